// Runs in every document of the test page, before JupyterLab (LabPage.add_init_script).
// window.__agyUnsafe(el, strict): why an element could run script or fetch something by itself, or null.
//   strict (the live widget's Markdown): also no <style>, style="", SVG, MathML, form controls.
// window.__agyLive: what the live widgets showed. Every 25 ms each StreamView that renders Markdown is
//   scanned: markers seen (AGYM<id>X in the text, AGYT<id>X in the thoughts) and unsafe elements in its
//   Markdown are recorded. Once its last words (AGYDONE) are rendered, Stop is clicked, so each reply
//   stays on screen exactly as long as the check needs.
(() => {
  const ACTIVE_TAGS = new Set(["script", "iframe", "object", "embed", "form", "input", "button", "textarea",
    "select", "option", "dialog", "base", "meta", "link", "frame", "frameset", "applet", "portal", "foreignobject",
    "use", "animate", "set", "image", "video", "audio", "source", "track", "picture", "noscript", "template",
    "keygen", "isindex", "marquee"]);
  const STRICT_TAGS = new Set(["style", "svg", "math"]);
  const FETCHING_ATTRS = new Set(["srcset", "ping", "formaction", "action", "background", "poster", "data",
    "codebase", "dynsrc", "lowsrc"]);
  const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
  const DATA_IMAGE = /^data:image\/(png|jpeg|gif|webp)[;,]/i;

  window.__agyUnsafe = (el, strict) => {
    const tag = el.localName.toLowerCase();
    if (ACTIVE_TAGS.has(tag) || (strict && STRICT_TAGS.has(tag))) return `<${tag}>`;
    for (const { name: rawName, value } of el.attributes) {
      const name = rawName.toLowerCase();
      const what = `<${tag} ${name}="${value.slice(0, 80)}">`;
      if (name.startsWith("on") || FETCHING_ATTRS.has(name) || (strict && name === "style")) return what;
      if (name === "src" && !(tag === "img" && DATA_IMAGE.test(value))) return what;
      if (name === "href" || name === "xlink:href") {
        let protocol = "invalid:";
        try { protocol = new URL(value, document.baseURI).protocol; } catch {}
        if (!LINK_PROTOCOLS.has(protocol)) return what;
      }
    }
    return null;
  };

  const live = { seen: new Set(), unsafe: new Set(), stopped: 0 };
  window.__agyLive = live;
  const poll = () => {
    for (const root of document.querySelectorAll('.agy-stream[data-formatting="markdown"]')) {
      const text = root.textContent;
      for (const marker of text.match(/AGY[MT]\d+X/g) || []) live.seen.add(marker);
      for (const block of root.querySelectorAll(".agy-md")) {
        for (const el of block.querySelectorAll("*")) {
          const why = window.__agyUnsafe(el, true);
          if (why) live.unsafe.add(`${(block.textContent.match(/AGY[MT]\d+X/) || ["?"])[0]}: ${why}`);
        }
      }
      const stop = root.querySelector("button.agy-stop");
      if (text.includes("AGYDONE") && stop && !stop.disabled && !stop.hidden) {
        live.stopped += 1;
        stop.click();
      }
    }
  };
  setInterval(poll, 25);
})();
