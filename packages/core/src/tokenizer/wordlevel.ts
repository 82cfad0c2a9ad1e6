// A tokenizer.json for a small word-level vocabulary, in the format of Hugging Face
// `tokenizers` (loadable by the Rust/Python library as well as by tokenizers.js), laid
// out like T5's specials: pad 0, eos 1, unk 2, then the words. Tests and the bundled
// demo model use it where a full umT5 SentencePiece vocabulary would be overkill.

export interface WordLevelTokenizerOptions {
  /** Default "<pad>" (id 0). */
  padToken?: string;
  /** Default "</s>" (id 1), appended to every encoded text as T5 does. */
  eosToken?: string;
  /** Default "<unk>" (id 2): what a word outside the vocabulary becomes. */
  unkToken?: string;
  /** Lowercase text before splitting (default true); the vocabulary must then be lowercase. */
  lowercase?: boolean;
}

// The "Whitespace" pre-tokenizer splits on \w+|[^\w\s]+. tokenizers.js evaluates it
// with JavaScript's ASCII \w while the Rust library's \w is Unicode, so only ASCII
// words are guaranteed to split identically in both; the vocabulary is held to that.
const WORD = /^(?:[A-Za-z0-9_]+|[!-/:-@[-^`{-~]+)$/;

/**
 * The tokenizer.json (as a JSON-serialisable object) of a word-level tokenizer over
 * `vocab`: ids 0–2 are pad/eos/unk, vocab[i] gets id 3 + i. Every word must be one
 * piece of the Whitespace pre-tokenizer (ASCII letters/digits/_ or ASCII punctuation),
 * unique, and lowercase when `lowercase` is on.
 */
export function buildWordLevelTokenizerJson(
  vocab: readonly string[],
  opts: WordLevelTokenizerOptions = {},
): Record<string, unknown> {
  const pad = opts.padToken ?? "<pad>";
  const eos = opts.eosToken ?? "</s>";
  const unk = opts.unkToken ?? "<unk>";
  const lowercase = opts.lowercase ?? true;
  const specials = [pad, eos, unk];
  if (new Set(specials).size !== 3)
    throw new Error(
      `buildWordLevelTokenizerJson: pad, eos and unk tokens must differ, got ${JSON.stringify(specials)}`,
    );
  const ids: Record<string, number> = {};
  specials.forEach((t, i) => {
    ids[t] = i;
  });
  vocab.forEach((w, i) => {
    if (typeof w !== "string" || !WORD.test(w))
      throw new Error(
        `buildWordLevelTokenizerJson: vocab[${i}] ${JSON.stringify(w)} is not one ASCII word or run of ASCII punctuation`,
      );
    if (lowercase && w !== w.toLowerCase())
      throw new Error(
        `buildWordLevelTokenizerJson: vocab[${i}] ${JSON.stringify(w)} has capitals but the tokenizer lowercases its input`,
      );
    if (Object.hasOwn(ids, w))
      throw new Error(
        `buildWordLevelTokenizerJson: vocab[${i}] ${JSON.stringify(w)} appears twice or is a special token`,
      );
    ids[w] = 3 + i;
  });
  const special = (content: string, id: number) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const eosItem = { SpecialToken: { id: eos, type_id: 0 } };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((t, i) => special(t, i)),
    normalizer: lowercase ? { type: "Lowercase" } : null,
    pre_tokenizer: { type: "Whitespace" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ Sequence: { id: "A", type_id: 0 } }, eosItem],
      pair: [{ Sequence: { id: "A", type_id: 0 } }, eosItem, { Sequence: { id: "B", type_id: 0 } }, eosItem],
      special_tokens: { [eos]: { id: eos, ids: [1], tokens: [eos] } },
    },
    decoder: null,
    model: { type: "WordLevel", vocab: ids, unk_token: unk },
  };
}
