// The operational endpoints: health, devices (through the native addon), docs, metrics, unknown routes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, type Harness, startFake, waitForStatus } from "./testing/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startFake();
});
afterAll(() => h.close());

describe("server", () => {
  it("answers /healthz with the model it serves", async () => {
    const r = await api(h.url, "/healthz");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: "ok", model: "fake", worker: "idle", queued: 0 });
  });

  it("lists devices with the CPU first", async () => {
    const r = await api<{ data: { name: string }[]; cuda: { available: boolean } }>(h.url, "/v1/devices");
    expect(r.status).toBe(200);
    expect(r.body.data[0]?.name).toBe("cpu");
    expect(typeof r.body.cuda.available).toBe("boolean");
  });

  it("gives clear JSON 404s for unknown routes and methods", async () => {
    const r404 = await api(h.url, "/nothing/here");
    expect(r404.status).toBe(404);
    expect(r404.body.error.message).toMatch(/no route GET \/nothing\/here/);
    const rPost = await api(h.url, "/healthz", { method: "POST" });
    expect(rPost.status).toBe(404);
    expect(rPost.body.error.message).toMatch(/POST/);
  });

  it("serves an OpenAPI document describing every endpoint", async () => {
    const r = await api(h.url, "/openapi.json");
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe("3.1.0");
    const paths = r.body.paths as Record<string, Record<string, unknown>>;
    expect(Object.keys(paths["/v1/videos"] ?? {}).sort()).toEqual(["get", "post"]);
    expect(Object.keys(paths["/v1/videos/{id}"] ?? {}).sort()).toEqual(["delete", "get"]);
    for (const p of ["/v1/videos/{id}/content", "/v1/videos/{id}/events", "/healthz", "/metrics"])
      expect(paths[p]).toBeDefined();
    const post = paths["/v1/videos"]?.post as { requestBody: { content: Record<string, { schema: any }> } };
    expect(Object.keys(post.requestBody.content).sort()).toEqual(["application/json", "multipart/form-data"]);
    expect(post.requestBody.content["application/json"]?.schema.properties.steps.maximum).toBe(100);
    expect(r.body.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
  });

  it("exports Prometheus metrics for the queue, jobs, step and generation time", async () => {
    const c = await api(h.url, "/v1/videos", { json: { prompt: "metrics" } });
    await waitForStatus(h.url, c.body.id, "completed");
    const r = await api(h.url, "/metrics");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = r.body as string;
    expect(text).toMatch(/^tessera_queue_depth 0$/m);
    expect(text).toMatch(/^tessera_jobs\{state="completed"\} 1$/m);
    expect(text).toMatch(/^tessera_step_seconds_count 4$/m);
    expect(text).toMatch(/^tessera_generation_seconds_count 1$/m);
    expect(text).toMatch(/^tessera_jobs_finished_total\{outcome="completed"\} 1$/m);
    expect(text).toMatch(/^tessera_worker_busy 0$/m);
  });
});
