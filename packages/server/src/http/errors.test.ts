// The one JSON error shape, on a bare fastify app with only the error handlers:
// what each kind of failure becomes, and which ones count as rejected submissions.
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RequestFieldError } from "../generator.js";
import { Metrics } from "../metrics.js";
import { ApiError, installErrorHandlers, truncate } from "./errors.js";

let app: FastifyInstance;
let metrics: Metrics;

beforeAll(async () => {
  app = Fastify();
  metrics = new Metrics(
    () => null,
    () => ({ busy: false }),
  );
  installErrorHandlers(app, metrics);
  app.get("/api-error", async () => {
    throw new ApiError(429, "queue_full", "the queue is full", null, { "retry-after": "7" });
  });
  app.post("/field", async () => {
    throw new RequestFieldError("steps", "steps must be at most 100");
  });
  const schema = { type: "object", properties: { n: { type: "integer" } }, required: ["n"] };
  app.post("/checked", { schema: { body: schema } }, async () => ({ ok: true }));
  app.get("/checked", { schema: { querystring: schema } }, async () => ({ ok: true }));
  app.get("/teapot", async () => {
    throw Object.assign(new Error("short and stout"), { statusCode: 418, code: "FST_TEAPOT" });
  });
  app.get("/bug", async () => {
    throw new Error("secret internals");
  });
  await app.ready();
});
afterAll(() => app.close());

async function rejectedInvalid(): Promise<number> {
  const m = await metrics.registry.getSingleMetric("tessera_requests_rejected_total")?.get();
  return m?.values.find((v) => v.labels.reason === "invalid")?.value ?? 0;
}

describe("installErrorHandlers", () => {
  it("answers an ApiError with its status, code and headers", async () => {
    const r = await app.inject({ url: "/api-error" });
    expect(r.statusCode).toBe(429);
    expect(r.headers["retry-after"]).toBe("7");
    expect(r.json()).toEqual({
      error: { type: "invalid_request_error", code: "queue_full", message: "the queue is full", param: null },
    });
  });

  it("answers a generator's field error with 400 naming the field, and counts it", async () => {
    const before = await rejectedInvalid();
    const r = await app.inject({ method: "POST", url: "/field" });
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatchObject({ code: "invalid_field", param: "steps" });
    expect(await rejectedInvalid()).toBe(before + 1);
  });

  it("names the field a schema refused; only refused submissions (POST) count", async () => {
    const before = await rejectedInvalid();
    const post = await app.inject({ method: "POST", url: "/checked", payload: { n: "x" } });
    expect(post.statusCode).toBe(400);
    expect(post.json().error).toMatchObject({ code: "invalid_field", param: "n" });
    const get = await app.inject({ url: "/checked?n=x" });
    expect(get.statusCode).toBe(400);
    expect(get.json().error).toMatchObject({ code: "invalid_field", param: "n" });
    expect(await rejectedInvalid()).toBe(before + 1);
  });

  it("turns unreadable JSON into invalid_json on the body", async () => {
    const r = await app.inject({
      method: "POST",
      url: "/checked",
      headers: { "content-type": "application/json" },
      payload: "{",
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatchObject({ code: "invalid_json", param: "body" });
    expect(r.json().error.message).toMatch(/^the body is not valid JSON: /);
  });

  it("passes other client errors through with their own code", async () => {
    const r = await app.inject({ url: "/teapot" });
    expect(r.statusCode).toBe(418);
    expect(r.json().error).toEqual({
      type: "invalid_request_error",
      code: "FST_TEAPOT",
      message: "short and stout",
      param: null,
    });
  });

  it("hides what went wrong inside behind a 500 server_error", async () => {
    const r = await app.inject({ url: "/bug" });
    expect(r.statusCode).toBe(500);
    expect(r.json().error).toEqual({
      type: "server_error",
      code: "internal_error",
      message: "internal server error",
      param: null,
    });
  });

  it("answers unknown routes with a 404 naming the method and path, not the query", async () => {
    const r = await app.inject({ method: "DELETE", url: "/nowhere?token=abc" });
    expect(r.statusCode).toBe(404);
    expect(r.json().error).toMatchObject({ code: "not_found", message: "no route DELETE /nowhere" });
  });
});

describe("truncate", () => {
  it("keeps short text and cuts long text with an ellipsis", () => {
    expect(truncate("abc", 3)).toBe("abc");
    expect(truncate("abcd", 3)).toBe("abc…");
  });
});
