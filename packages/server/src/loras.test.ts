// LoRAs and the few-step schedule on the API: GET /v1/loras lists the operator's
// LoRAs by name; a request picks them by name with a strength (never a path), an
// unknown name is a 400 naming the field; an explicit schedule sets the step count.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, type Harness, startFake, waitFor } from "./testing/harness.js";

let h: Harness;
let bare: Harness;
beforeAll(async () => {
  h = await startFake({ fake: { loras: ["distill", "style"] }, limits: { maxSteps: 50 } });
  bare = await startFake();
});
afterAll(async () => {
  await h.close();
  await bare.close();
});

async function submit(server: Harness, json: unknown) {
  return api(server.url, "/v1/videos", { json });
}

async function expect400(json: unknown, param: string, message: RegExp, server = h) {
  const r = await submit(server, json);
  expect(r.status, JSON.stringify(r.body)).toBe(400);
  expect(r.body.error.param).toBe(param);
  expect(r.body.error.message).toMatch(message);
}

async function completedCall(id: string, prompt: string) {
  await waitFor(`job ${id}`, async () => (await api(h.url, `/v1/videos/${id}`)).body.status === "completed");
  return h.gen.calls.find((c) => c.prompt === prompt);
}

describe("LoRAs on the API", () => {
  it("lists the LoRAs by name (none without --loras)", async () => {
    const r = await api(h.url, "/v1/loras");
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      object: "list",
      data: [
        { object: "lora", name: "distill" },
        { object: "lora", name: "style" },
      ],
    });
    expect((await api(bare.url, "/v1/loras")).body).toEqual({ object: "list", data: [] });
  });

  it("hands the named LoRAs, with their strengths (default 1), to the generator", async () => {
    const r = await submit(h, {
      prompt: "with loras",
      loras: [{ name: "style", strength: 0.8 }, { name: "distill.safetensors" }],
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const call = await completedCall(r.body.id, "with loras");
    expect(call?.loras).toEqual([
      { name: "style", strength: 0.8 },
      { name: "distill", strength: 1 },
    ]);
    const plain = await submit(h, { prompt: "without loras" });
    expect((await completedCall(plain.body.id, "without loras"))?.loras).toBeUndefined();
  });

  it("refuses unknown names, paths and bad strengths with a 400 naming the field", async () => {
    await expect400(
      { prompt: "a", loras: [{ name: "nope" }] },
      "loras",
      /no LoRA named 'nope'.*'distill', 'style'/,
    );
    await expect400({ prompt: "a", loras: [{ name: "style" }, { name: "style" }] }, "loras", /given twice/);
    await expect400(
      { prompt: "a", loras: [{ path: "/etc/passwd" }] },
      "loras.0.name",
      /loras\.0\.name is required/,
    );
    await expect400(
      { prompt: "a", loras: [{ name: "style", path: "/etc/passwd" }] },
      "loras.0.path",
      /unknown field 'loras\.0\.path'/,
    );
    await expect400({ prompt: "a", loras: [{ name: "../style" }] }, "loras.0.name", /pattern/);
    await expect400(
      { prompt: "a", loras: [{ name: "style", strength: 1000 }] },
      "loras.0.strength",
      /<= 100/,
    );
    await expect400({ prompt: "a", loras: "style" }, "loras", /array/);
    await expect400(
      { prompt: "a", loras: [{ name: "style" }] },
      "loras",
      /started without --loras DIR/,
      bare,
    );
  });

  it("takes loras as a JSON text part of a multipart form", async () => {
    const f = new FormData();
    f.append("prompt", "multipart loras");
    f.append("loras", JSON.stringify([{ name: "style", strength: 0.5 }]));
    const r = await api(h.url, "/v1/videos", { body: f });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect((await completedCall(r.body.id, "multipart loras"))?.loras).toEqual([
      { name: "style", strength: 0.5 },
    ]);
    const g = new FormData();
    g.append("prompt", "x");
    g.append("loras", "[not json");
    const bad = await api(h.url, "/v1/videos", { body: g });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe("loras");
  });
});

describe("an explicit schedule on the API", () => {
  it("sets the step count from timesteps or sigmas and hands the list on", async () => {
    const r = await submit(h, { prompt: "four steps", timesteps: [1000, 750, 500, 250], guidance: 1 });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body.steps).toBe(4);
    const call = await completedCall(r.body.id, "four steps");
    expect(call).toMatchObject({ steps: 4, timesteps: [1000, 750, 500, 250], guidance: 1 });
    const s = await submit(h, { prompt: "sigmas", sigmas: [1, 0.75, 0.5, 0.25] });
    expect((await completedCall(s.body.id, "sigmas"))?.sigmas).toEqual([1, 0.75, 0.5, 0.25]);
  });

  it("refuses lists that do not decrease, disagree with steps or each other, or run past the server's steps", async () => {
    await expect400({ prompt: "a", timesteps: [250, 500] }, "timesteps", /must decrease/);
    await expect400(
      { prompt: "a", timesteps: [1000, 500], steps: 20 },
      "steps",
      /steps is 20 but timesteps has 2/,
    );
    await expect400(
      { prompt: "a", timesteps: [1000, 500], sigmas: [1] },
      "sigmas",
      /give lists of one length/,
    );
    await expect400({ prompt: "a", sigmas: [1.5] }, "sigmas.0", /<= 1/);
    await expect400({ prompt: "a", timesteps: [] }, "timesteps", /fewer than 1|NOT have fewer/);
    await expect400(
      { prompt: "a", timesteps: Array.from({ length: 51 }, (_, i) => 1000 - i) },
      "timesteps",
      /more than 50/,
    );
  });

  it("documents the fields and GET /v1/loras in /openapi.json", async () => {
    const doc = (await api(h.url, "/openapi.json")).body;
    expect(doc.paths["/v1/loras"]?.get).toBeDefined();
    const body = doc.paths["/v1/videos"].post.requestBody.content["application/json"].schema;
    expect(body.properties.loras.items.required).toEqual(["name"]);
    expect(body.properties.timesteps.maxItems).toBe(50);
    expect(body.properties.sigmas.description).toMatch(/lightx2v/);
  });
});
