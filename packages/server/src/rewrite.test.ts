// `rewrite` and `prompt_used`: for a model with a caption style the job says what the
// model was really asked, from submission on; `rewrite: false` sends the prompt as
// typed; a free-text model keeps the prompt. Fake generators here; pipeline.test.ts
// does the same on real tiny models with core's rewriter.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, type Harness, startFake, waitForStatus } from "./testing/harness.js";

describe("a model with a caption style", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startFake({ fake: { stepMs: 2, rewrites: true } });
  });
  afterAll(() => h.close());

  it("says so in /healthz, and the API document describes rewrite and prompt_used", async () => {
    expect((await api(h.url, "/healthz")).body.caption_style).toBe("fake-world");
    const doc = (await api(h.url, "/openapi.json")).body;
    const post = doc.paths["/v1/videos"].post;
    expect(post.requestBody.content["application/json"].schema.properties.rewrite.type).toBe("boolean");
    expect(post.requestBody.content["multipart/form-data"].schema.properties.rewrite.type).toBe("boolean");
    const video = post.responses["202"].content["application/json"].schema.properties;
    expect(video.prompt_used.type).toEqual(["string", "null"]);
    expect(Object.keys(video.rewrite.properties)).toEqual(["unknown_words", "filled_defaults", "changed"]);
  });

  it("rewrites by default, and the job shows what the model got from the 202 on", async () => {
    const c = await api(h.url, "/v1/videos", { json: { prompt: "a  ball zooming past", steps: 2 } });
    expect(c.status, JSON.stringify(c.body)).toBe(202);
    const report = {
      unknown_words: ["zooming", "past"],
      filled_defaults: ["objects[0].colour"],
      changed: true,
    };
    expect(c.body).toMatchObject({
      prompt: "a  ball zooming past",
      prompt_used: "fake caption: red a ball",
      rewrite: report,
    });
    const done = await waitForStatus(h.url, c.body.id, "completed");
    expect(done).toMatchObject({ prompt_used: "fake caption: red a ball", rewrite: report });
    expect(h.gen.calls.at(-1)?.rewrite).toBe(true);
    const listed = (await api(h.url, "/v1/videos?limit=1")).body.data[0];
    expect(listed).toMatchObject({ id: c.body.id, prompt_used: "fake caption: red a ball", rewrite: report });
  });

  it("sends the prompt as typed (whitespace collapsed) with rewrite: false, also from a form", async () => {
    const c = await api(h.url, "/v1/videos", {
      json: { prompt: "a  ball zooming past", steps: 2, rewrite: false },
    });
    expect(c.status).toBe(202);
    expect(c.body).toMatchObject({ prompt_used: "a ball zooming past", rewrite: null });
    const done = await waitForStatus(h.url, c.body.id, "completed");
    expect(done).toMatchObject({ prompt_used: "a ball zooming past", rewrite: null });
    expect(h.gen.calls.at(-1)?.rewrite).toBe(false);

    for (const [text, want] of [
      ["false", "a green square"],
      [" true ", "fake caption: a green square"],
    ] as const) {
      const f = new FormData();
      f.append("prompt", "a green square");
      f.append("steps", "1");
      f.append("rewrite", text);
      const m = await api(h.url, "/v1/videos", { body: f });
      expect(m.status, JSON.stringify(m.body)).toBe(202);
      expect(m.body.prompt_used).toBe(want);
    }
  });

  it("refuses at submission a prompt the rewriter cannot use, unless rewriting is off", async () => {
    const r = await api(h.url, "/v1/videos", { json: { prompt: "!!! ???" } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ param: "prompt", message: expect.stringMatching(/blank/) });
    const ok = await api(h.url, "/v1/videos", { json: { prompt: "!!! ???", rewrite: false, steps: 1 } });
    expect(ok.status).toBe(202);
    expect(ok.body.prompt_used).toBe("!!! ???");
  });

  it("keeps the rewrite flag and prompt_used across a restart", async () => {
    const dataDir = h.dataDir;
    const a = await api(h.url, "/v1/videos", { json: { prompt: "blue ball", steps: 100, rewrite: false } });
    const b = await api(h.url, "/v1/videos", { json: { prompt: "blue ball", steps: 1 } });
    expect([a.status, b.status]).toEqual([202, 202]);
    const before = h.gen;
    await h.close({ keepData: true, graceMs: 0 });
    h = await startFake({ dataDir, fake: { stepMs: 1, rewrites: true } });
    const da = await waitForStatus(h.url, a.body.id, "completed");
    const db = await waitForStatus(h.url, b.body.id, "completed");
    expect([da.prompt_used, da.rewrite]).toEqual(["blue ball", null]);
    expect(db.prompt_used).toBe("fake caption: blue ball");
    expect(db.rewrite).toEqual({ unknown_words: [], filled_defaults: [], changed: true });
    const runs = [...before.completed, ...h.gen.completed].filter((c) => c.prompt === "blue ball");
    expect(runs.map((c) => c.rewrite).sort()).toEqual([false, true]);
  });
});

describe("a model trained on free text", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startFake({ fake: { stepMs: 2 } });
  });
  afterAll(() => h.close());

  it("gives the model the prompt itself, with or without rewrite", async () => {
    expect((await api(h.url, "/healthz")).body.caption_style).toBeNull();
    for (const rewrite of [undefined, true, false]) {
      const c = await api(h.url, "/v1/videos", {
        json: { prompt: " a cat\ton a  beach ", steps: 1, ...(rewrite === undefined ? {} : { rewrite }) },
      });
      expect(c.status).toBe(202);
      expect(c.body).toMatchObject({
        prompt: " a cat\ton a  beach ",
        prompt_used: "a cat on a beach",
        rewrite: null,
      });
      const done = await waitForStatus(h.url, c.body.id, "completed");
      expect([done.prompt_used, done.rewrite]).toEqual(["a cat on a beach", null]);
    }
  });
});

describe("a generator that cannot say what the model gets at submission", () => {
  it("answers prompt_used null until the run reports it", async () => {
    const h = await startFake({ fake: { stepMs: 20, rewrites: true, noPreparePrompt: true } });
    try {
      const c = await api(h.url, "/v1/videos", { json: { prompt: "red circle", steps: 3 } });
      expect([c.body.prompt_used, c.body.rewrite]).toEqual([null, null]);
      const done = await waitForStatus(h.url, c.body.id, "completed");
      expect(done.prompt_used).toBe("fake caption: red circle");
    } finally {
      await h.close();
    }
  });
});
