// Which prompts a model's text encoder understands. Wan2.1 was trained on free text;
// the bundled demo model only on captions in the procedural world's one style
// (caption/caption.ts), so for it free text goes through the prompt rewriter first.
// The style is a property of the model folder (tessera.json "captionStyle"), never
// guessed: rewriting a Wan2.1 prompt such as "a cat on a beach" onto the world's
// grammar would throw its meaning away.
import { type RewriteResult, rewritePrompt } from "../prompt/rewrite.js";

export const CAPTION_STYLES = ["tessera-world"] as const;
export type CaptionStyle = (typeof CAPTION_STYLES)[number];

export interface PreparedPrompt {
  /** The text the text encoder gets. */
  prompt: string;
  /** The rewriter's report when it ran (the model has a caption style and rewriting is on), else null. */
  rewrite: RewriteResult | null;
}

/** The prompt as the model should see it: rewritten onto the model's caption style when it has one and `rewrite` is on. */
export function preparePrompt(text: string, style: CaptionStyle | undefined, rewrite = true): PreparedPrompt {
  if (style !== "tessera-world" || !rewrite) return { prompt: text, rewrite: null };
  const r = rewritePrompt(text);
  return { prompt: r.caption, rewrite: r };
}
