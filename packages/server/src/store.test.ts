// The database's schema migrations: a data folder made by an older server keeps its
// jobs and keys, and its queued jobs still run.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { Store } from "./store.js";
import { api, startFake, tempDir, waitForStatus } from "./testing/harness.js";
import { requestFromStored } from "./validation.js";

// The schema as version 1 (Tessera 0.1) wrote it, before prompt_used and prompt_rewrite.
const V1_SCHEMA = `
  CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    key_id TEXT,
    status TEXT NOT NULL,
    request TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    completed_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    result TEXT,
    timings TEXT
  );
  CREATE INDEX IF NOT EXISTS jobs_status_seq ON jobs (status, seq);
  CREATE INDEX IF NOT EXISTS jobs_key_seq ON jobs (key_id, seq);
  CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_used_at INTEGER
  );
  PRAGMA user_version = 1;
`;

const QUEUED = "11111111-2222-4333-8444-000000000001";
const DONE = "11111111-2222-4333-8444-000000000002";
const oldRequest = {
  model: "fake",
  prompt: "an old  job",
  negativePrompt: "",
  width: 32,
  height: 32,
  frames: 5,
  fps: 8,
  steps: 2,
  guidance: 5,
  seed: 1,
};

function writeV1Database(file: string): void {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.exec(V1_SCHEMA);
  const insert = db.prepare(
    `INSERT INTO jobs (id, key_id, status, request, total_steps, created_at, completed_at, result, timings)
     VALUES (?, NULL, ?, ?, 2, ?, ?, ?, ?)`,
  );
  insert.run(QUEUED, "queued", JSON.stringify(oldRequest), Date.now() - 1000, null, null, null);
  insert.run(
    DONE,
    "failed",
    JSON.stringify({ ...oldRequest, prompt: "finished long ago" }),
    Date.now() - 2000,
    Date.now() - 1500,
    null,
    JSON.stringify({ run_ms: 3 }),
  );
  db.prepare(`INSERT INTO api_keys (id, hash, name, prefix, created_at) VALUES (?, ?, ?, ?, ?)`).run(
    "key_old",
    "0".repeat(64),
    "old key",
    "tsk_old…",
    Date.now(),
  );
  db.close();
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("database migrations", () => {
  it("brings a version 1 database to the current version (3), keeping every job and key", async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const file = join(dir, "tessera.db");
    writeV1Database(file);
    const store = new Store(file);
    try {
      expect(store.db.pragma("user_version", { simple: true })).toBe(3);
      const cols = (store.db.prepare("PRAGMA table_info(jobs)").all() as { name: string }[]).map(
        (c) => c.name,
      );
      expect(cols).toEqual(expect.arrayContaining(["prompt_used", "prompt_rewrite", "interruptions"]));
      const q = store.getAnyJob(QUEUED);
      expect(q).toMatchObject({ status: "queued", prepared: null, request: oldRequest });
      // A job from before `rewrite` existed runs with the default (rewrite on).
      expect(requestFromStored(q?.request as typeof oldRequest).rewrite).toBe(true);
      expect(store.getAnyJob(DONE)).toMatchObject({ status: "failed", timings: { run_ms: 3 } });
      expect(store.listKeys()).toEqual([expect.objectContaining({ id: "key_old", name: "old key" })]);
      expect(store.hasActiveKeys()).toBe(true);
      // The new columns work on old rows.
      expect(store.markStarted(QUEUED)).toBe(true);
      const prepared = {
        prompt: "fake caption: red",
        rewrite: { unknownWords: ["old", "job"], filledDefaults: [], changed: true },
      };
      const result = {
        file: "v.y4m",
        contentType: "video/x-yuv4mpeg2",
        bytes: 1,
        width: 32,
        height: 32,
        frames: 5,
        fps: 8,
      };
      expect(store.markCompleted(QUEUED, result, { run_ms: 1 }, prepared)).toBe(true);
      expect(store.getAnyJob(QUEUED)?.prepared).toEqual(prepared);
    } finally {
      store.close();
    }
    // Opening it again changes nothing.
    const again = new Store(file);
    expect(again.db.pragma("user_version", { simple: true })).toBe(3);
    expect(again.getAnyJob(QUEUED)?.status).toBe("completed");
    again.close();
  });

  it("runs a job queued by the old server, and reports what the model got", async () => {
    const dir = await tempDir();
    writeV1Database(join(dir, "tessera.db"));
    // Open mode asked for: its only key is revoked below, and the job is then followed without one.
    const h = await startFake({ dataDir: dir, fake: { stepMs: 1, rewrites: true }, open: true });
    try {
      // The old database's key is still active: this server is not in open mode.
      expect((await api(h.url, `/v1/videos/${QUEUED}`)).status).toBe(401);
      expect(h.srv.store.hasActiveKeys()).toBe(true);
      h.srv.store.revokeKey("key_old");
      const done = await waitForStatus(h.url, QUEUED, "completed");
      expect(done).toMatchObject({
        prompt: "an old  job",
        prompt_used: "fake caption: red an",
        rewrite: { unknown_words: ["old", "job"], filled_defaults: ["objects[0].colour"], changed: true },
      });
      expect(h.gen.completed[0]?.rewrite).toBe(true);
      const old = (await api(h.url, `/v1/videos/${DONE}`)).body;
      expect(old).toMatchObject({ status: "failed", prompt_used: null, rewrite: null });
    } finally {
      await h.close();
    }
  });

  it("makes a new database at the current version, and refuses one from a newer server", async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const fresh = new Store(join(dir, "fresh.db"));
    expect(fresh.db.pragma("user_version", { simple: true })).toBe(3);
    fresh.close();
    const newer = new Database(join(dir, "newer.db"));
    newer.pragma("user_version = 4");
    newer.close();
    expect(() => new Store(join(dir, "newer.db"))).toThrow(/schema version 4, newer than this server's 3/);
  });
});
