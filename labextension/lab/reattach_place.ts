// Where a reply's output goes in its cell after a page reload (reattach.ts): pure functions, tested in node
// (test/reattach_place.test.mjs).

export type ReplyTag = { cell: string | null; run: string; reply: number; part: number; final: boolean };
export type Output = { output_type: string; data?: unknown; metadata?: Record<string, unknown> };
/** Where an output goes: replace the one at `index`, insert it at `index`, replace all outputs, or nowhere. */
export type Placement = { kind: "set" | "insert"; index: number } | { kind: "replace-all" } | null;

export function tagOf(output: { metadata?: unknown } | undefined): ReplyTag | null {
  const tag = (output?.metadata as { agy_reply?: ReplyTag } | undefined)?.agy_reply;
  return tag && typeof tag.run === "string" && typeof tag.reply === "number" ? tag : null;
}

/** Where `tag`'s output goes among a cell's `outputs`; `isNew` for a display_data (a part that starts now). */
export function placement(outputs: Output[], tag: ReplyTag, isNew: boolean): Placement {
  const tags = outputs.map(tagOf);
  if (tags.some((t) => t && t.run === tag.run && t.reply > tag.reply)) return null; // the cell ran again since
  const same = tags.findIndex((t) => t && t.run === tag.run && t.reply === tag.reply && t.part === tag.part);
  if (same >= 0) return tags[same]!.final && !tag.final ? null : { kind: "set", index: same };
  const mine = tags.map((t, i) => (t && t.run === tag.run && t.reply === tag.reply ? i : -1)).filter((i) => i >= 0);
  if (!mine.length) return { kind: "replace-all" }; // what the cell shows is from before this run
  if (isNew) return { kind: "insert", index: outputs.length };
  const before = mine.filter((i) => tags[i]!.part < tag.part);
  return { kind: "insert", index: before.length ? before[before.length - 1] + 1 : mine[0] };
}

/** Whether a notebook uses agy_jupyter: only then is the kernel asked (a kernel without the comm target logs an error). */
export function usesAgy(sources: string[]): boolean {
  return sources.some((source) => /agy_jupyter|^%%chat\b|^%agent\b/m.test(source));
}
