// Bad requests are 400s that name the field, and nothing bad reaches the queue.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, type Harness, startFake } from "./testing/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startFake({
    limits: { maxPromptChars: 200, maxFrames: 33, maxSteps: 50, maxWidth: 512, maxHeight: 256 },
  });
});
afterAll(() => h.close());

async function post(body: unknown, contentType = "application/json") {
  const r = await fetch(`${h.url}/v1/videos`, {
    method: "POST",
    headers: { "content-type": contentType },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return {
    status: r.status,
    body: (await r.json()) as {
      error: { type: string; param: string | null; message: string; code: string };
    },
  };
}

async function expect400(body: unknown, param: string, message?: RegExp) {
  const r = await post(body);
  expect(r.status, `${JSON.stringify(body).slice(0, 80)} → ${JSON.stringify(r.body)}`).toBe(400);
  expect(r.body.error.param).toBe(param);
  expect(r.body.error.type).toBe("invalid_request_error");
  if (message) expect(r.body.error.message).toMatch(message);
}

describe("POST /v1/videos validation", () => {
  it("refuses malformed JSON naming the body", async () => {
    for (const text of ['{"prompt": "a"', "{prompt: 'a'}", "[1,2", '{"prompt":"a"}}', "\u0000"]) {
      const r = await post(text);
      expect(r.status, text).toBe(400);
      expect(r.body.error.param).toBe("body");
    }
    const empty = await post("");
    expect(empty.status).toBe(400);
  });

  it("refuses a body that is not an object", async () => {
    for (const b of [[], "just a string", 42, null]) {
      const r = await post(JSON.stringify(b));
      expect(r.status, JSON.stringify(b)).toBe(400);
    }
  });

  it("refuses wrong types, naming the field", async () => {
    await expect400({ prompt: 5 }, "prompt", /string/);
    await expect400({ prompt: "a", steps: "20" }, "steps", /integer/);
    await expect400({ prompt: "a", steps: 2.5 }, "steps", /integer/);
    await expect400({ prompt: "a", guidance: "high" }, "guidance");
    await expect400({ prompt: "a", seed: -1 }, "seed");
    await expect400({ prompt: "a", size: 64 }, "size");
    await expect400({ prompt: "a", size: "64*64" }, "size");
    await expect400({ prompt: "a", frames: true }, "frames");
    await expect400({ prompt: "a", seconds: "4s" }, "seconds");
    await expect400({ prompt: ["a"] }, "prompt");
    await expect400({ prompt: "a", negative_prompt: { x: 1 } }, "negative_prompt");
  });

  it("refuses huge and non-finite numbers, naming the field", async () => {
    await expect400({ prompt: "a", steps: 1e9 }, "steps", /<= 50/);
    await expect400({ prompt: "a", frames: 99999 }, "frames", /<= 33/);
    await expect400({ prompt: "a", guidance: 1e308 }, "guidance");
    await expect400({ prompt: "a", seed: 2 ** 60 }, "seed");
    await expect400({ prompt: "a", seconds: 1e6 }, "seconds");
    await expect400({ prompt: "a", seconds: 10 }, "seconds", /33 frames/);
    await expect400({ prompt: "a", size: "99999x99999" }, "size", /larger than this server allows/);
    await expect400({ prompt: "a", size: "1024x128" }, "size", /512x256/);
    // JSON.parse turns 1e400 into Infinity; it must not slip through as a number.
    const r = await post('{"prompt": "a", "guidance": 1e400}');
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe("guidance");
  });

  it("refuses what the model cannot run", async () => {
    await expect400({ prompt: "a", size: "40x32" }, "size", /multiples of 16/);
    await expect400({ prompt: "a", size: "0x0" }, "size");
    await expect400({ prompt: "a", frames: 10 }, "frames", /1 \+ 4k/);
    await expect400({ prompt: "a", frames: 9, seconds: 1 }, "seconds", /not both/);
    await expect400({ prompt: "a", model: "sora" }, "model", /fake/);
    await expect400({ prompt: "a", strength: 0.5 }, "strength", /video/);
    await expect400({ prompt: "a", strength: 1.5 }, "strength");
  });

  it("refuses missing, empty, blank, too long and unknown fields", async () => {
    await expect400({}, "prompt", /required/);
    await expect400({ prompt: "" }, "prompt");
    await expect400({ prompt: " \n\t " }, "prompt", /blank/);
    await expect400({ prompt: "x".repeat(201) }, "prompt", /200/);
    await expect400({ prompt: "a", negative_prompt: "y".repeat(201) }, "negative_prompt");
    await expect400({ prompt: "a", sneaky: 1 }, "sneaky", /unknown field/);
    await expect400({ prompt: "a", image: "data:image/png;base64,AAAA" }, "image", /multipart/);
    await expect400({ prompt: "a", __proto__: { steps: 1 }, constructor: 1 }, "constructor");
  });

  it("refuses control characters and broken UTF-16 in prompts", async () => {
    await expect400({ prompt: "a\u0000b" }, "prompt", /U\+0000/);
    await expect400({ prompt: "red \u001b[31mball" }, "prompt", /U\+001B/);
    await expect400({ prompt: "a\u007f" }, "prompt");
    await expect400({ prompt: "line\u2028break" }, "prompt");
    await expect400({ prompt: "ok", negative_prompt: "bad\u0007" }, "negative_prompt");
    // A lone surrogate is valid JSON but not text.
    const r = await post('{"prompt": "broken \\ud800 text"}');
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe("prompt");
    expect(r.body.error.message).toMatch(/surrogate/);
  });

  it("takes any Unicode text, counts its length in characters, and returns it unchanged", async () => {
    const prompts = [
      "un chat 🐈‍⬛ qui danse sous la pluie",
      "一只猫在雨中跳舞",
      "قطة ترقص تحت المطر",
      "e\u0301 combining, zero\u200bwidth, tab\tand\nnewline",
      "🎬".repeat(200), // 200 characters, 400 UTF-16 units, 800 bytes
    ];
    for (const prompt of prompts) {
      const r = await api(h.url, "/v1/videos", { json: { prompt, steps: 1 } });
      expect(r.status, prompt.slice(0, 20)).toBe(202);
      expect(r.body.prompt).toBe(prompt);
      const g = await api(h.url, `/v1/videos/${r.body.id}`);
      expect(g.body.prompt).toBe(prompt);
    }
  });

  it("refuses other content types with 415 and very large bodies with 413", async () => {
    for (const ct of ["text/plain", "application/x-www-form-urlencoded", "application/xml"]) {
      const r = await post(JSON.stringify({ prompt: "a" }), ct);
      expect(r.status, ct).toBe(415);
    }
    // Parameters and case do not matter for JSON, and the body is still checked.
    const ok = await post(JSON.stringify({ prompt: "a", steps: 1 }), "Application/JSON; charset=UTF-8");
    expect(ok.status).toBe(202);
    const bad = await post(JSON.stringify({ prompt: "a", steps: "1" }), "application/json; charset=utf-8");
    expect(bad.status).toBe(400);
    const big = await post({ prompt: "a", padding: "x".repeat(2 * 1024 * 1024) });
    expect(big.status).toBe(413);
  });

  it("checks list and content query strings", async () => {
    for (const [q, param] of [
      ["limit=0", "limit"],
      ["limit=101", "limit"],
      ["limit=abc", "limit"],
      ["order=sideways", "order"],
      ["cursor=1", "cursor"],
    ]) {
      const r = await api(h.url, `/v1/videos?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.param, q).toBe(param);
    }
  });

  it("refuses a rewrite that is not true or false, naming the field", async () => {
    for (const rewrite of ["false", "no", 0, 1, null, [], {}])
      await expect400({ prompt: "a", rewrite }, "rewrite", /rewrite must be true or false/);
    const f = new FormData();
    f.append("prompt", "a");
    f.append("rewrite", "maybe");
    const r = await api(h.url, "/v1/videos", { body: f });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ param: "rewrite", message: "rewrite must be true or false" });
  });

  it("queued nothing for any refused request", async () => {
    const counts = await api(h.url, "/metrics");
    expect(counts.body).toMatch(/^tessera_requests_rejected_total\{reason="invalid"\} [1-9]\d*$/m);
    const list = await api(h.url, "/v1/videos?limit=100");
    // Only the Unicode prompts and the one JSON with an odd content type above were accepted.
    expect(list.body.data.length).toBe(6);
  });
});
