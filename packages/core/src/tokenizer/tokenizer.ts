// Text to token ids for the text encoder, over tokenizers.js (@huggingface/tokenizers,
// a pure-JS reader of Hugging Face tokenizer.json files). Adds what a diffusion
// pipeline needs and tokenizers.js leaves out: truncation that keeps the special
// tokens (as HF does), padding to a fixed length, and the pad/eos ids.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

export class TokenizerError extends Error {
  override name = "TokenizerError";
}

export interface TokenizerLoadOptions {
  /**
   * tokenizer_config.json (special-token names and flags). Default: the one beside
   * tokenizer.json if there is one, as in a Hugging Face model folder; false: none.
   */
  tokenizerConfig?: string | false;
}

export interface TextEncodeOptions {
  /** Pad (or truncate) to this many ids. */
  maxLength: number;
  /** Add the post-processor's special tokens (T5: a trailing </s>); default true. */
  addSpecialTokens?: boolean;
}

export interface EncodedText {
  /** maxLength ids: the text's, then the pad id. */
  ids: Int32Array;
  /** How many ids are the text's (special tokens included); the rest are padding. */
  length: number;
}

export interface EncodedBatch {
  /** Row-major [texts, maxLength], ready for an i32 tensor. */
  ids: Int32Array;
  lengths: number[];
}

type Json = Record<string, unknown>;

export class TextTokenizer {
  readonly padId: number;
  readonly eosId: number;
  /** Undefined when the tokenizer has no unknown token (every input is representable). */
  readonly unkId: number | undefined;
  /** One past the largest id the tokenizer can produce (vocabulary plus added tokens). */
  readonly vocabSize: number;
  readonly #tok: Tokenizer;

  private constructor(
    tok: Tokenizer,
    ids: { pad: number; eos: number; unk: number | undefined; vocabSize: number },
    readonly source: string,
  ) {
    this.#tok = tok;
    this.padId = ids.pad;
    this.eosId = ids.eos;
    this.unkId = ids.unk;
    this.vocabSize = ids.vocabSize;
  }

  /** Loads a Hugging Face tokenizer.json (and its tokenizer_config.json; see options). */
  static async fromFile(path: string, opts: TokenizerLoadOptions = {}): Promise<TextTokenizer> {
    const json = await readJson(path, "tokenizer.json");
    let configPath = opts.tokenizerConfig;
    if (configPath === undefined) {
      const beside = join(dirname(path), "tokenizer_config.json");
      configPath = existsSync(beside) ? beside : false;
    }
    const config = configPath === false ? {} : await readJson(configPath, "tokenizer_config.json");
    return TextTokenizer.fromJson(json, config, path);
  }

  /** A tokenizer from parsed tokenizer.json (and tokenizer_config.json) contents. */
  static fromJson(json: unknown, config: unknown = {}, source = "tokenizer.json"): TextTokenizer {
    if (!isObject(json)) throw new TokenizerError(`${source}: expected a JSON object`);
    if (!isObject(config)) throw new TokenizerError(`${source}: tokenizer config must be a JSON object`);
    const model = json.model;
    if (!isObject(model))
      throw new TokenizerError(`${source}: has no "model" section; is it a Hugging Face tokenizer.json?`);
    if (json.added_tokens !== undefined && !Array.isArray(json.added_tokens))
      throw new TokenizerError(`${source}: "added_tokens" must be an array`);
    // tokenizers.js insists on these keys; tokenizer.json files written by hand may omit the null ones.
    const full: Json = {
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
    };
    Object.assign(full, json);
    const cfg: Json = { ...config };
    // tokenizers.js reads a WordLevel model as its "Legacy" model, which takes the
    // unknown token from the config rather than from the model section.
    if (model.type === "WordLevel" && cfg.unk_token === undefined && typeof model.unk_token === "string")
      cfg.unk_token = model.unk_token;
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(full, cfg);
    } catch (e) {
      throw new TokenizerError(`${source}: tokenizers.js cannot load it: ${(e as Error).message}`);
    }

    const vocab = tok.get_vocab(true);
    let vocabSize = 0;
    for (const id of vocab.values()) if (id + 1 > vocabSize) vocabSize = id + 1;
    if (vocabSize === 0) throw new TokenizerError(`${source}: the vocabulary is empty`);
    const idOf = (names: (string | undefined)[]): number | undefined => {
      for (const n of names) {
        if (n === undefined) continue;
        const id = tok.token_to_id(n);
        if (id !== undefined) return id;
      }
      return undefined;
    };
    const padding = isObject(json.padding) ? json.padding : {};
    const pad = idOf([
      tokenName(cfg.pad_token),
      typeof padding.pad_token === "string" ? padding.pad_token : undefined,
      "<pad>",
    ]);
    const eos = idOf([tokenName(cfg.eos_token), "</s>"]);
    const unk =
      idOf([tokenName(cfg.unk_token), typeof model.unk_token === "string" ? model.unk_token : undefined]) ??
      (typeof model.unk_id === "number" ? model.unk_id : undefined);
    if (pad === undefined)
      throw new TokenizerError(
        `${source}: no pad token (none named by tokenizer_config.json's pad_token, the padding section, or "<pad>")`,
      );
    if (eos === undefined)
      throw new TokenizerError(`${source}: no end-of-sequence token (none named by eos_token, or "</s>")`);
    return new TextTokenizer(tok, { pad, eos, unk, vocabSize }, source);
  }

  /**
   * The ids of `text`, padded with padId to maxLength. A text longer than that is cut
   * as Hugging Face does: the text's own tokens are truncated to leave room for the
   * special tokens, which are then added, so a T5 prompt still ends in </s>.
   */
  encode(text: string, opts: TextEncodeOptions): EncodedText {
    const maxLength = opts.maxLength;
    if (!Number.isInteger(maxLength) || maxLength <= 0)
      throw new TokenizerError(`encode: maxLength must be a positive integer, got ${maxLength}`);
    if (typeof text !== "string")
      throw new TokenizerError(`encode: text must be a string, got ${typeof text}`);
    const special = opts.addSpecialTokens ?? true;
    let ids = this.rawIds(text, special);
    if (ids.length > maxLength)
      ids = special ? this.truncateKeepingSpecials(text, ids, maxLength) : ids.slice(0, maxLength);
    const out = new Int32Array(maxLength).fill(this.padId);
    out.set(ids);
    return { ids: out, length: ids.length };
  }

  /** encode() for several texts into one row-major [texts, maxLength] array. */
  encodeBatch(texts: readonly string[], opts: TextEncodeOptions): EncodedBatch {
    const ids = new Int32Array(texts.length * opts.maxLength);
    const lengths: number[] = [];
    texts.forEach((t, i) => {
      const e = this.encode(t, opts);
      ids.set(e.ids, i * opts.maxLength);
      lengths.push(e.length);
    });
    return { ids, lengths };
  }

  /** The text of `ids`; special tokens (padding, </s>) are dropped unless skipSpecialTokens is false. */
  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    const arr = Array.from(ids);
    for (const id of arr)
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
        throw new TokenizerError(`decode: id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    // tokenizers.js rejects an empty list rather than decoding it to "".
    if (arr.length === 0) return "";
    return this.#tok.decode(arr, { skip_special_tokens: opts.skipSpecialTokens ?? true });
  }

  /** The token strings of `text` (no special tokens): for debugging a vocabulary. */
  tokenize(text: string): string[] {
    return this.#tok.tokenize(text, { add_special_tokens: false });
  }

  /** The id of a token string, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.#tok.token_to_id(token);
  }

  private rawIds(text: string, special: boolean): number[] {
    const ids = this.#tok.encode(text, { add_special_tokens: special }).ids;
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isInteger(ids[i])) {
        const token = this.#tok.encode(text, { add_special_tokens: special }).tokens[i];
        throw new TokenizerError(
          `${this.source}: token ${JSON.stringify(token)} of ${JSON.stringify(text)} is not in the vocabulary and the tokenizer has no unknown token`,
        );
      }
    }
    return ids;
  }

  // HF truncates the sequence to maxLength minus the number of tokens the
  // post-processor adds, then post-processes. The added tokens are located by
  // matching the plain encoding inside the full one (prefix + text + suffix).
  private truncateKeepingSpecials(text: string, full: number[], maxLength: number): number[] {
    const plain = this.rawIds(text, false);
    const added = full.length - plain.length;
    if (added <= 0) return full.slice(0, maxLength);
    if (added >= maxLength)
      throw new TokenizerError(
        `encode: maxLength ${maxLength} leaves no room for text beside the ${added} special token(s)`,
      );
    for (let p = 0; p <= added; p++) {
      let match = true;
      for (let i = 0; i < plain.length && match; i++) match = full[p + i] === plain[i];
      if (match) {
        const keep = maxLength - added;
        return [...full.slice(0, p), ...plain.slice(0, keep), ...full.slice(p + plain.length)];
      }
    }
    // A post-processor that is not prefix + text + suffix: plain head truncation.
    return full.slice(0, maxLength);
  }
}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

// Special tokens in tokenizer_config.json are strings or AddedToken dicts ({content, ...}).
function tokenName(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (isObject(v) && typeof v.content === "string") return v.content;
  return undefined;
}

async function readJson(path: string, what: string): Promise<Json> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TokenizerError(
      code === "ENOENT"
        ? `${what} not found: ${path}`
        : `cannot read ${what} ${path}: ${(e as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${path} is not valid JSON (${(e as Error).message}); is the ${what} complete?`);
  }
  if (!isObject(json)) throw new TokenizerError(`${path}: expected a JSON object in ${what}`);
  return json;
}
