// The request's schema, its /openapi.json description and its field checks come
// from the generation parameters declared in @tessera/core/params, with this
// server's limits on top.
import { GENERATION_PARAMS, type ParamSpec } from "@tessera/core/params";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, type Harness, startFake } from "./testing/harness.js";
import { BOOLEAN_FIELDS, createVideoBodySchema, DEFAULT_LIMITS, NUMERIC_FIELDS } from "./validation.js";

const declared: readonly ParamSpec[] = GENERATION_PARAMS;
const onServer = declared.filter((p) => p.surfaces.includes("server"));

describe("the request schema", () => {
  it("has a field for every parameter the server carries, and no other", () => {
    const s = createVideoBodySchema(DEFAULT_LIMITS);
    const json = onServer.filter((p) => !p.server?.upload).map((p) => p.server?.field);
    expect(Object.keys(s.properties)).toEqual(json);
    expect(s.required).toEqual(["prompt"]);
    // Uploads are multipart file parts, not JSON fields.
    expect(s.properties).not.toHaveProperty("image");
    expect(s.properties).not.toHaveProperty("video");
    for (const f of NUMERIC_FIELDS) expect(["integer", "number"]).toContain(s.properties[f]?.type);
    expect([...BOOLEAN_FIELDS]).toEqual(["rewrite"]);
  });

  it("applies the server's limits on top of the declared ranges", () => {
    const s = createVideoBodySchema({
      ...DEFAULT_LIMITS,
      maxPromptChars: 10,
      maxFrames: 33,
      maxSteps: 5,
      maxGuidance: 7,
    });
    expect(s.properties.prompt).toMatchObject({ minLength: 1, maxLength: 10 });
    expect(s.properties.negative_prompt).toMatchObject({ maxLength: 10 });
    expect(s.properties.frames).toMatchObject({ minimum: 1, maximum: 33 });
    expect(s.properties.steps).toMatchObject({ minimum: 1, maximum: 5 });
    expect(s.properties.guidance).toMatchObject({ minimum: 0, maximum: 7 });
    expect(s.properties.seed).toMatchObject({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
  });
});

describe("the API document and the checks", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startFake({ limits: { maxFrames: 33 } });
  });
  afterAll(() => h.close());

  it("describes each field with its declaration", async () => {
    const doc = (await api(h.url, "/openapi.json")).body;
    const props = doc.paths["/v1/videos"].post.requestBody.content["application/json"].schema.properties;
    for (const p of onServer.filter((q) => !q.server?.upload))
      expect(props[p.server?.field as string].description, p.key).toContain(p.description);
    expect(props.frames.description).toMatch(/1 \+ 4k/);
    expect(props.size.examples).toEqual(["832x480"]);
  });

  it("refuses what the model's limits refuse, naming the field the client sent", async () => {
    const post = (json: unknown) => api(h.url, "/v1/videos", { json });
    const size = await post({ prompt: "a", size: "24x16" });
    expect(size.status).toBe(400);
    expect(size.body.error).toMatchObject({
      param: "size",
      message: expect.stringMatching(/multiples of 16/),
    });
    const frames = await post({ prompt: "a", frames: 7 });
    expect(frames.body.error).toMatchObject({
      param: "frames",
      message: "frames must be 1 + 4k (1, 5, 9, …), got 7",
    });
    const both = await post({ prompt: "a", seconds: 1, frames: 5 });
    expect(both.body.error).toMatchObject({ param: "seconds", message: "give seconds or frames, not both" });
    // 1 s at the fake's fps turns into a frame count of the form 1 + 4k.
    const ok = await post({ prompt: "a", seconds: 1, steps: 1 });
    expect(ok.status).toBe(202);
    expect((ok.body.frames - 1) % 4).toBe(0);
  });
});
