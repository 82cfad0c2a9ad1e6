// The demo model's vocabulary: every word the caption grammar (caption/caption.ts) can
// produce, and nothing else. The text encoder only ever saw captions, so a word
// outside this list carries no meaning for it; the prompt rewriter maps free text
// onto these words first.

import {
  BACKGROUND_COLOUR_NAMES,
  MOTION_PHRASES,
  OBJECT_COLOUR_NAMES,
  PAN_PHRASES,
  POSITION_PHRASES,
  SHAPES,
} from "../caption/vocabulary.js";
import { buildWordLevelTokenizerJson } from "../tokenizer/wordlevel.js";

// Connective words of the grammar that no vocabulary table holds.
const GRAMMAR_WORDS = ["a", "an", "and", "on", "background", ",", "small", "large"];

// Same split as the tokenizer's Whitespace pre-tokenizer: \w+ or a run of punctuation.
function words(text: string): string[] {
  return text.toLowerCase().match(/\w+|[^\w\s]+/g) ?? [];
}

/** The caption words in a fixed order (grammar words, then each table in turn): ids 3.. of the tokenizer. */
export function worldCaptionWords(): string[] {
  const phrases = [
    ...GRAMMAR_WORDS,
    ...OBJECT_COLOUR_NAMES,
    ...BACKGROUND_COLOUR_NAMES,
    ...SHAPES,
    ...Object.values(MOTION_PHRASES),
    ...Object.values(POSITION_PHRASES),
    ...Object.values(PAN_PHRASES),
  ];
  const seen = new Set<string>();
  const out: string[] = [];
  for (const p of phrases)
    for (const w of words(p))
      if (!seen.has(w)) {
        seen.add(w);
        out.push(w);
      }
  return out;
}

/** tokenizer.json of the demo model: pad 0, eos 1, unk 2, then worldCaptionWords(). */
export function worldTokenizerJson(): Record<string, unknown> {
  return buildWordLevelTokenizerJson(worldCaptionWords());
}
