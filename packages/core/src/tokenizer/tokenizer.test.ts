import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { TextTokenizer, TokenizerError } from "./tokenizer.js";
import { buildWordLevelTokenizerJson } from "./wordlevel.js";

const FIXTURE_DIR = fileURLToPath(new URL("./fixtures/tiny-wordlevel/", import.meta.url));
const FIXTURE = join(FIXTURE_DIR, "tokenizer.json");

// The fixture's vocabulary: enough words for short video prompts in tests.
const FIXTURE_VOCAB = [
  "a",
  "the",
  "cat",
  "dog",
  "bird",
  "runs",
  "flies",
  "walks",
  "on",
  "in",
  "over",
  "through",
  "at",
  "and",
  "beach",
  "snow",
  "forest",
  "ocean",
  "city",
  "night",
  "sunset",
  "red",
  "blue",
  "car",
  "drives",
  "slowly",
  "camera",
  "pans",
  "left",
  "right",
  ".",
  ",",
];

const tmp = mkdtempSync(join(tmpdir(), "tessera-tok-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const id = (w: string) => 3 + FIXTURE_VOCAB.indexOf(w);

// Every encoding expected below (ids, <unk>, truncation keeping </s>) was also checked
// against Hugging Face's Rust tokenizers (npm tokenizers 0.23.2) loading the same JSON.

describe("buildWordLevelTokenizerJson", () => {
  it("matches the checked-in fixture (UPDATE_FIXTURES=1 rewrites it)", () => {
    const json = buildWordLevelTokenizerJson(FIXTURE_VOCAB);
    if (process.env.UPDATE_FIXTURES === "1") writeFileSync(FIXTURE, `${JSON.stringify(json, null, 2)}\n`);
    // Compared as data: the formatter may lay the file out its own way.
    expect(JSON.parse(readFileSync(FIXTURE, "utf8"))).toEqual(json);
  });

  it("rejects vocabularies the tokenizer could not reproduce", () => {
    expect(() => buildWordLevelTokenizerJson(["Cat"])).toThrow(/capitals/);
    expect(() => buildWordLevelTokenizerJson(["Cat"], { lowercase: false })).not.toThrow();
    expect(() => buildWordLevelTokenizerJson(["two words"])).toThrow(/vocab\[0\]/);
    expect(() => buildWordLevelTokenizerJson(["cat."])).toThrow(/not one ASCII word/);
    expect(() => buildWordLevelTokenizerJson(["café"])).toThrow(/not one ASCII word/);
    expect(() => buildWordLevelTokenizerJson([""])).toThrow(/not one ASCII word/);
    expect(() => buildWordLevelTokenizerJson(["cat", "dog", "cat"])).toThrow(
      /vocab\[2\] "cat" appears twice/,
    );
    expect(() => buildWordLevelTokenizerJson(["a"], { unkToken: "<pad>" })).toThrow(/must differ/);
  });
});

describe("TextTokenizer (word level)", () => {
  it("loads the fixture with T5's special ids", async () => {
    const tok = await TextTokenizer.fromFile(FIXTURE);
    expect(tok.padId).toBe(0);
    expect(tok.eosId).toBe(1);
    expect(tok.unkId).toBe(2);
    expect(tok.vocabSize).toBe(3 + FIXTURE_VOCAB.length);
    expect(tok.tokenToId("cat")).toBe(id("cat"));
  });

  it("encodes with lowercasing, punctuation split, a trailing </s> and padding", async () => {
    const tok = await TextTokenizer.fromFile(FIXTURE);
    expect(tok.tokenize("A Cat runs, on the beach.")).toEqual([
      "a",
      "cat",
      "runs",
      ",",
      "on",
      "the",
      "beach",
      ".",
    ]);
    const e = tok.encode("A Cat runs, on the beach.", { maxLength: 12 });
    expect(e.length).toBe(9);
    expect(Array.from(e.ids)).toEqual([
      id("a"),
      id("cat"),
      id("runs"),
      id(","),
      id("on"),
      id("the"),
      id("beach"),
      id("."),
      1,
      0,
      0,
      0,
    ]);
    const plain = tok.encode("a cat", { maxLength: 4, addSpecialTokens: false });
    expect(Array.from(plain.ids)).toEqual([id("a"), id("cat"), 0, 0]);
    expect(plain.length).toBe(2);
    const empty = tok.encode("", { maxLength: 3 });
    expect(Array.from(empty.ids)).toEqual([1, 0, 0]);
    expect(empty.length).toBe(1);
  });

  it("maps unknown words to <unk>", async () => {
    const tok = await TextTokenizer.fromFile(FIXTURE);
    const e = tok.encode("a zebra on the moon", { maxLength: 8 });
    expect(Array.from(e.ids.subarray(0, e.length))).toEqual([id("a"), 2, id("on"), id("the"), 2, 1]);
    expect(tok.decode(e.ids)).toBe("a on the");
    expect(tok.decode(e.ids, { skipSpecialTokens: false })).toBe("a <unk> on the <unk> </s> <pad> <pad>");
  });

  it("round-trips text made of its words", async () => {
    const tok = await TextTokenizer.fromFile(FIXTURE);
    for (const text of [
      "a red car drives through the city at night.",
      "the camera pans left",
      "a dog , a cat",
    ]) {
      const e = tok.encode(text, { maxLength: 32 });
      const back = tok.decode(e.ids);
      // Decoding joins with spaces and re-attaches "." and "," as HF's clean-up does.
      expect(back).toBe(text.replace(/ ([.,])/g, "$1"));
      expect(Array.from(tok.encode(back, { maxLength: 32 }).ids)).toEqual(Array.from(e.ids));
    }
    expect(tok.decode([])).toBe("");
    expect(() => tok.decode([tok.vocabSize])).toThrow(/outside the vocabulary/);
  });

  it("truncates as HF does: the text is cut, the </s> kept", async () => {
    const tok = await TextTokenizer.fromFile(FIXTURE);
    const text = "a cat runs on the beach at sunset";
    const e = tok.encode(text, { maxLength: 4 });
    expect(Array.from(e.ids)).toEqual([id("a"), id("cat"), id("runs"), 1]);
    expect(e.length).toBe(4);
    const exact = tok.encode(text, { maxLength: 9 });
    expect(exact.length).toBe(9);
    expect(exact.ids[8]).toBe(1);
    const plain = tok.encode(text, { maxLength: 3, addSpecialTokens: false });
    expect(Array.from(plain.ids)).toEqual([id("a"), id("cat"), id("runs")]);
    expect(() => tok.encode(text, { maxLength: 1 })).toThrow(/no room for text/);
    expect(() => tok.encode(text, { maxLength: 0 })).toThrow(/positive integer/);
  });

  it("encodes a batch row-major", async () => {
    const tok = await TextTokenizer.fromFile(FIXTURE);
    const b = tok.encodeBatch(["a cat", "the blue ocean at night"], { maxLength: 5 });
    expect(b.lengths).toEqual([3, 5]);
    expect(Array.from(b.ids)).toEqual([
      id("a"),
      id("cat"),
      1,
      0,
      0,
      id("the"),
      id("blue"),
      id("ocean"),
      id("at"),
      1,
    ]);
  });

  it("reads tokenizer_config.json beside tokenizer.json or where told", async () => {
    const dir = join(tmp, "with-config");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(dir);
    // A vocabulary whose pad is not "<pad>": only the config can name it.
    const json = buildWordLevelTokenizerJson(["x", "y"], {
      padToken: "[PAD]",
      eosToken: "[EOS]",
      unkToken: "[UNK]",
    });
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
    await expect(TextTokenizer.fromFile(join(dir, "tokenizer.json"))).rejects.toThrow(/no pad token/);
    writeFileSync(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({ pad_token: "[PAD]", eos_token: { content: "[EOS]" } }),
    );
    const tok = await TextTokenizer.fromFile(join(dir, "tokenizer.json"));
    expect([tok.padId, tok.eosId, tok.unkId]).toEqual([0, 1, 2]);
    await expect(
      TextTokenizer.fromFile(join(dir, "tokenizer.json"), { tokenizerConfig: false }),
    ).rejects.toThrow(/no pad token/);
    await expect(
      TextTokenizer.fromFile(join(dir, "tokenizer.json"), { tokenizerConfig: join(dir, "nope.json") }),
    ).rejects.toThrow(/tokenizer_config\.json not found: .*nope\.json/);
  });

  it("says clearly what is wrong with a missing or corrupt tokenizer.json", async () => {
    await expect(TextTokenizer.fromFile(join(tmp, "missing.json"))).rejects.toThrow(
      /tokenizer\.json not found: .*missing\.json/,
    );
    const cut = join(tmp, "cut.json");
    writeFileSync(cut, readFileSync(FIXTURE, "utf8").slice(0, 200));
    await expect(TextTokenizer.fromFile(cut)).rejects.toThrow(TokenizerError);
    await expect(TextTokenizer.fromFile(cut)).rejects.toThrow(/cut\.json is not valid JSON/);
    const notTok = join(tmp, "config.json");
    writeFileSync(notTok, JSON.stringify({ d_model: 4096 }));
    await expect(TextTokenizer.fromFile(notTok)).rejects.toThrow(/has no "model" section/);
    const arr = join(tmp, "array.json");
    writeFileSync(arr, "[1, 2]");
    await expect(TextTokenizer.fromFile(arr)).rejects.toThrow(/expected a JSON object/);
    const badModel = join(tmp, "bad-model.json");
    writeFileSync(badModel, JSON.stringify({ model: { type: "Nonsense" } }));
    await expect(TextTokenizer.fromFile(badModel, { tokenizerConfig: false })).rejects.toThrow(
      /tokenizers\.js cannot load it/,
    );
  });
});

// A hand-made Unigram (SentencePiece-style) tokenizer laid out as umT5's tokenizer.json is:
// Metaspace pre-tokenizer and decoder, "$A </s>" template, pad/eos/unk = 0/1/2. umT5's
// own also has a Precompiled (NFKC-like) normaliser, which needs a real charsmap.
function unigramJson() {
  const special = (content: string, i: number) => ({
    id: i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const meta = { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: ["<pad>", "</s>", "<unk>"].map(special),
    normalizer: { type: "Replace", pattern: { Regex: " {2,}" }, content: " " },
    pre_tokenizer: meta,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }],
      pair: [
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "</s>", type_id: 0 } },
        { Sequence: { id: "B", type_id: 0 } },
        { SpecialToken: { id: "</s>", type_id: 0 } },
      ],
      special_tokens: { "</s>": { id: "</s>", ids: [1], tokens: ["</s>"] } },
    },
    decoder: meta,
    model: {
      type: "Unigram",
      unk_id: 2,
      byte_fallback: false,
      vocab: [
        ["<pad>", 0],
        ["</s>", 0],
        ["<unk>", 0],
        ["▁", -3],
        ["▁the", -2],
        ["▁cat", -2.5],
        ["▁ca", -6],
        ["▁run", -4],
        ["ning", -4],
        ["▁running", -9.5], // worse than ▁run + ning (−8)
        ["s", -4],
        ["t", -5],
        ["c", -5],
        ["a", -5],
        ["n", -5],
        ["i", -5],
        ["g", -5],
        ["h", -5],
        ["e", -5],
        ["r", -5],
        ["u", -5],
        [".", -3],
      ],
    },
  };
}

describe("TextTokenizer (unigram, umT5-like)", () => {
  const uid = (piece: string) => unigramJson().model.vocab.findIndex(([p]) => p === piece);

  it("segments by the best total score and appends </s>", () => {
    const tok = TextTokenizer.fromJson(unigramJson(), {
      eos_token: "</s>",
      pad_token: "<pad>",
      unk_token: "<unk>",
    });
    expect([tok.padId, tok.eosId, tok.unkId, tok.vocabSize]).toEqual([0, 1, 2, 22]);
    expect(tok.tokenize("the cat running")).toEqual(["▁the", "▁cat", "▁run", "ning"]);
    expect(tok.tokenize("cats")).toEqual(["▁cat", "s"]);
    const e = tok.encode("the  cats running.", { maxLength: 10 });
    expect(Array.from(e.ids)).toEqual([
      uid("▁the"),
      uid("▁cat"),
      uid("s"),
      uid("▁run"),
      uid("ning"),
      uid("."),
      1,
      0,
      0,
      0,
    ]);
    expect(e.length).toBe(7);
    expect(tok.decode(e.ids)).toBe("the cats running.");
  });

  it("maps characters outside the vocabulary to <unk> and keeps </s> on truncation", () => {
    const tok = TextTokenizer.fromJson(unigramJson());
    const e = tok.encode("the €€ cat", { maxLength: 8 });
    // Consecutive unknown characters fuse into one <unk>, as SentencePiece does.
    expect(Array.from(e.ids.subarray(0, e.length))).toEqual([uid("▁the"), uid("▁"), 2, uid("▁cat"), 1]);
    const cut = tok.encode("the cat running", { maxLength: 3 });
    expect(Array.from(cut.ids)).toEqual([uid("▁the"), uid("▁cat"), 1]);
  });
});
