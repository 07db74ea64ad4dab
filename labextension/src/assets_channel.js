// The page-wide meeting point of agy_assets.js, which publishes the Markdown renderer, and the views
// that use it: globalThis.__agyAssets = { promise, resolve, value }, created by whichever module runs
// first. The first published value wins; `value` lets a view use it synchronously once it is there.
export const ASSETS_API = 1; // bump when the shape of the published object changes

export function assetsChannel() {
  return (globalThis.__agyAssets ??= deferred());
}

function deferred() {
  let settle;
  const channel = {
    promise: new Promise((resolve) => (settle = resolve)),
    value: undefined,
    resolve(value) {
      if (channel.value !== undefined) return;
      channel.value = value;
      settle(value);
    },
  };
  return channel;
}

/** Whether `assets` is a published object this build of the views can use. */
export const usableAssets = (assets) =>
  !!assets && assets.api === ASSETS_API && typeof assets.MarkdownBlock === "function";
