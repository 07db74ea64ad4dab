// Types of the plain-JS modules in ../src that the extension uses (they are also bundled for anywidget).
declare module "*/static_transcript.js" {
  export const TRANSCRIPT_MIME: string;
  export function renderStaticTranscript(data: unknown, html: string): HTMLElement;
  export function codeFromReply(html: string): string[];
  export function errorText(outputs: unknown[]): string;
  export function askAboutCell(source: string, error?: string, language?: string): string;
}

declare module "*.svg" {
  const svg: string;
  export default svg;
}
