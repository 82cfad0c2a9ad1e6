// API keys: open mode with none, Bearer keys once one exists, each key seeing
// only its own videos, revocation, hashes at rest, and per-key rate limits.
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashKey } from "./store.js";
import { api, type Harness, readSse, startFake, waitForStatus } from "./testing/harness.js";

describe("API keys", () => {
  let h: Harness;
  let keyA = "";
  let keyB = "";
  let openJob = "";
  beforeAll(async () => {
    h = await startFake();
  });
  afterAll(() => h.close());

  it("runs in open mode while no key exists", async () => {
    const r = await api(h.url, "/v1/videos", { json: { prompt: "open mode" } });
    expect(r.status).toBe(202);
    openJob = r.body.id;
  });

  it("needs a valid Bearer key on every /v1 route once a key exists", async () => {
    keyA = h.srv.store.createKey("alice").key;
    keyB = h.srv.store.createKey("bob").key;
    expect(keyA).toMatch(/^tsk_[A-Za-z0-9_-]{43}$/);
    for (const [method, path] of [
      ["GET", "/v1/videos"],
      ["POST", "/v1/videos"],
      ["GET", `/v1/videos/${openJob}`],
      ["GET", "/v1/devices"],
    ] as const) {
      const none = await api(h.url, path, { method });
      expect(none.status, `${method} ${path}`).toBe(401);
      expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(none.body.error.code).toBe("missing_api_key");
      const wrong = await api(h.url, path, { method, key: `${keyA}x` });
      expect(wrong.status).toBe(401);
      expect(wrong.body.error.code).toBe("invalid_api_key");
    }
    const lower = await api(h.url, "/v1/videos", { headers: { authorization: `bearer ${keyA}` } });
    expect(lower.status).toBe(200);
    // Health, metrics and the API document stay open for probes and scrapers.
    for (const p of ["/healthz", "/metrics", "/openapi.json"]) expect((await api(h.url, p)).status).toBe(200);
  });

  it("stores only SHA-256 hashes of keys", async () => {
    const db = new Database(h.srv.data.dbFile, { readonly: true });
    try {
      const rows = db.prepare("SELECT hash, prefix FROM api_keys").all() as {
        hash: string;
        prefix: string;
      }[];
      expect(rows.map((r) => r.hash).sort()).toEqual([hashKey(keyA), hashKey(keyB)].sort());
      // And the database runs in WAL mode (readers never wait for the worker's writes).
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      const dump = JSON.stringify(db.prepare("SELECT * FROM api_keys").all());
      expect(dump).not.toContain(keyA);
      expect(dump).not.toContain(keyB);
    } finally {
      db.close();
    }
  });

  it("shows each key only its own videos; another key's ids are 404 everywhere", async () => {
    const a = await api(h.url, "/v1/videos", { key: keyA, json: { prompt: "alice's video" } });
    expect(a.status).toBe(202);
    const id = a.body.id;
    await waitForStatus(h.url, id, "completed", { key: keyA });
    for (const path of [
      `/v1/videos/${id}`,
      `/v1/videos/${id}/content`,
      `/v1/videos/${id}/content?variant=thumbnail`,
    ]) {
      expect((await api(h.url, path, { key: keyB })).status, path).toBe(404);
      expect((await api(h.url, path, { key: keyA })).status, path).toBe(200);
    }
    expect((await readSse(h.url, `/v1/videos/${id}/events`, keyB)).status).toBe(404);
    expect((await api(h.url, `/v1/videos/${id}`, { key: keyB, method: "DELETE" })).status).toBe(404);
    expect((await api(h.url, `/v1/videos/${id}`, { key: keyA })).body.status).toBe("completed");
    const listB = await api(h.url, "/v1/videos", { key: keyB });
    expect(listB.body.data).toEqual([]);
    const listA = await api(h.url, "/v1/videos", { key: keyA });
    expect(listA.body.data.map((v: { id: string }) => v.id)).toEqual([id]);
    // A cursor from someone else's list is refused, not used to peek.
    expect((await api(h.url, `/v1/videos?after=${id}`, { key: keyB })).status).toBe(400);
    // Videos made in open mode belong to no key.
    expect((await api(h.url, `/v1/videos/${openJob}`, { key: keyA })).status).toBe(404);
  });

  it("refuses a revoked key at once, and everyone once no key is left (open mode is not a fallback)", async () => {
    const list = h.srv.store.listKeys();
    expect(list.map((k) => k.name)).toEqual(["alice", "bob"]);
    expect(h.srv.store.revokeKey(keyA)).toBe(true);
    expect((await api(h.url, "/v1/videos", { key: keyA })).status).toBe(401);
    expect((await api(h.url, "/v1/videos", { key: keyB })).status).toBe(200);
    const bob = h.srv.store.listKeys().find((k) => k.name === "bob");
    expect(bob?.lastUsedAt).toBeGreaterThan(0);
    expect(h.srv.store.revokeKey(bob?.id as string)).toBe(true);
    expect(h.srv.store.revokeKey(bob?.id as string)).toBe(false);
    const locked = await api(h.url, `/v1/videos/${openJob}`);
    expect(locked.status).toBe(401);
    expect(locked.body.error.code).toBe("no_active_key");
    expect(locked.body.error.message).toMatch(/tessera keys create.*--open/);
    // A new key opens it again, to that key only.
    const keyC = h.srv.store.createKey("carol").key;
    expect((await api(h.url, "/v1/videos", { key: keyC })).status).toBe(200);
    expect((await api(h.url, "/v1/videos")).status).toBe(401);
  });

  it("serves without keys after they were all revoked only when started with open", async () => {
    const o = await startFake({ open: true });
    try {
      const k = o.srv.store.createKey("once").key;
      expect((await api(o.url, "/v1/videos")).status).toBe(401);
      expect(o.srv.store.revokeKey(k)).toBe(true);
      expect((await api(o.url, "/v1/videos")).status).toBe(200);
    } finally {
      await o.close();
    }
  });
});

describe("rate limits", () => {
  it("limits each key on its own, with 429 and Retry-After", async () => {
    const h = await startFake({ rateLimit: { perMinute: 60, burst: 3 } });
    try {
      const a = h.srv.store.createKey("a").key;
      const b = h.srv.store.createKey("b").key;
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 5; i++) {
        const r = await api(h.url, "/v1/videos", { key: a });
        statuses.push(r.status);
        if (r.status === 429) {
          retryAfter = r.headers.get("retry-after");
          expect(r.body.error.code).toBe("rate_limited");
        }
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(retryAfter)).toBeLessThanOrEqual(2);
      expect((await api(h.url, "/v1/videos", { key: b })).status).toBe(200);
      // Probes are never limited.
      for (let i = 0; i < 5; i++) expect((await api(h.url, "/healthz")).status).toBe(200);
      expect((await api(h.url, "/metrics")).body).toMatch(
        /tessera_requests_rejected_total\{reason="rate_limited"\} 2/,
      );
    } finally {
      await h.close();
    }
  });
});
