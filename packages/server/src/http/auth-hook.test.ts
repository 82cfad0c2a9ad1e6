// The key check and rate limit as a module of its own: installAuth on a bare fastify
// app over a real Store, with one route behind AUTH and one open.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Metrics } from "../metrics.js";
import { Store } from "../store.js";
import { tempDir } from "../testing/harness.js";
import { AUTH, installAuth } from "./auth.js";
import { installErrorHandlers } from "./errors.js";

let dir: string;
let store: Store;
let app: FastifyInstance;

async function build(rateLimit: { perMinute: number; burst: number } | false): Promise<FastifyInstance> {
  const metrics = new Metrics(
    () => store,
    () => ({ busy: false }),
  );
  const a = Fastify();
  installErrorHandlers(a, metrics);
  installAuth(a, { store, metrics, rateLimit });
  a.get("/private", { config: AUTH }, async (req) => ({ keyId: req.keyId }));
  a.get("/open", async (req) => ({ keyId: req.keyId }));
  await a.ready();
  return a;
}

beforeEach(async () => {
  dir = await tempDir();
  store = new Store(join(dir, "tessera.db"));
});
afterEach(async () => {
  await app.close();
  store.close();
  await rm(dir, { recursive: true, force: true });
});

describe("installAuth", () => {
  it("lets everyone in with no key id while no key exists", async () => {
    app = await build(false);
    const r = await app.inject({ url: "/private" });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ keyId: null });
  });

  it("once a key exists, needs it on AUTH routes only, and tells the route whose it is", async () => {
    app = await build(false);
    const { key, info } = store.createKey("ci");
    const none = await app.inject({ url: "/private" });
    expect(none.statusCode).toBe(401);
    expect(none.headers["www-authenticate"]).toBe('Bearer realm="tessera"');
    expect(none.json().error.code).toBe("missing_api_key");
    const wrong = await app.inject({ url: "/private", headers: { authorization: "Bearer tsk_nope" } });
    expect(wrong.json().error.code).toBe("invalid_api_key");
    const ok = await app.inject({ url: "/private", headers: { authorization: `bearer  ${key} ` } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ keyId: info.id });
    expect((await app.inject({ url: "/open" })).json()).toEqual({ keyId: null });
  });

  it("records a key's use at most once a minute", async () => {
    app = await build(false);
    const { key, info } = store.createKey("ci");
    const auth = { authorization: `Bearer ${key}` };
    await app.inject({ url: "/private", headers: auth });
    const first = store.listKeys().find((k) => k.id === info.id)?.lastUsedAt;
    expect(first).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 5));
    await app.inject({ url: "/private", headers: auth });
    expect(store.listKeys().find((k) => k.id === info.id)?.lastUsedAt).toBe(first);
  });

  it("limits open-mode clients by address, and leaves open routes alone", async () => {
    app = await build({ perMinute: 60, burst: 2 });
    const codes: number[] = [];
    for (let i = 0; i < 3; i++) codes.push((await app.inject({ url: "/private" })).statusCode);
    expect(codes).toEqual([200, 200, 429]);
    const other = await app.inject({ url: "/private", remoteAddress: "10.0.0.9" });
    expect(other.statusCode).toBe(200);
    const limited = await app.inject({ url: "/private" });
    expect(limited.headers["retry-after"]).toBe("1");
    expect(limited.json().error.code).toBe("rate_limited");
    for (let i = 0; i < 3; i++) expect((await app.inject({ url: "/open" })).statusCode).toBe(200);
  });
});
