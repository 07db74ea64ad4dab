// The renderer of application/vnd.agy.transcript+json, the static copy a finished reply leaves: drawn like
// the live widget (src/static_transcript.js). Its rank puts it before text/html, which holds the same reply
// for front ends without this extension (GitHub, nbconvert, VS Code); the prose is read from that copy.
import { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { Widget } from "@lumino/widgets";
import { renderStaticTranscript, TRANSCRIPT_MIME } from "../src/static_transcript.js";

const RANK = 40; // text/html is 50: lower ranks win

/** A bundle value as one string (nbformat may store text as a list of lines). */
export function bundleText(value: unknown): string {
  if (typeof value === "string") return value;
  return Array.isArray(value) ? value.join("") : "";
}

class TranscriptRenderer extends Widget implements IRenderMime.IRenderer {
  constructor() {
    super();
    this.addClass("agy-transcript-output");
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const html = bundleText(model.data["text/html"]);
    this.node.replaceChildren(renderStaticTranscript(model.data[TRANSCRIPT_MIME], html));
  }
}

export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true, // everything it shows is text, or HTML through the widget's DOMPurify allowlist
  mimeTypes: [TRANSCRIPT_MIME],
  defaultRank: RANK,
  createRenderer: () => new TranscriptRenderer(),
};

const extension: IRenderMime.IExtension = {
  id: "agy-jupyter:transcript-renderer",
  description: "Renders agy_jupyter's saved replies like the live widget.",
  rendererFactory,
  rank: RANK,
  dataType: "json",
};

export default extension;
