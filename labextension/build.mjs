// Bundle each view into one self-contained ES module for anywidget (no shared chunks: anywidget
// imports the module from a blob URL, where relative imports cannot resolve). CSS is minified and
// inlined as a string that each view puts in a <style> element.
// agy_assets.js holds the heavy Markdown renderer (marked, DOMPurify, highlight.js), sent once per
// kernel session; stream_view.js must stay small (it is sent with every StreamView), so it may not
// import render_markdown.js: the build fails if it grows past STREAM_VIEW_MAX_BYTES.
import { readFile } from "node:fs/promises";
import { build, transform } from "esbuild";

const VIEWS = ["stream_view", "approval_view", "usage_view", "agy_assets"];
const STREAM_VIEW_MAX_BYTES = 16_500; // 15,000 until the screen-reader announcements (announce.js) added ~0.9 kB
const OUT_DIR = "../agy_jupyter/notebook/static";

const cssAsText = {
  name: "css-as-text",
  setup(b) {
    b.onLoad({ filter: /\.css$/ }, async ({ path }) => {
      const { code } = await transform(await readFile(path, "utf8"), { loader: "css", minify: true });
      return { contents: code, loader: "text" };
    });
  },
};

const started = performance.now();
const result = await build({
  entryPoints: VIEWS.map((name) => `src/${name}.js`),
  outdir: OUT_DIR,
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  legalComments: "eof",
  plugins: [cssAsText],
  logLevel: "warning",
  metafile: true,
});
const streamView = Object.entries(result.metafile.outputs).find(([file]) => file.endsWith("/stream_view.js"))[1];
if (streamView.bytes > STREAM_VIEW_MAX_BYTES) {
  console.error(`stream_view.js is ${streamView.bytes} bytes (limit ${STREAM_VIEW_MAX_BYTES}): it is sent with every ` +
    `StreamView, so heavy libraries belong in agy_assets.js. Inputs: ${Object.keys(streamView.inputs).join(", ")}`);
  process.exit(1);
}
console.log(`built ${VIEWS.map((v) => v + ".js").join(", ")} into ${OUT_DIR} in ${Math.round(performance.now() - started)} ms`);
