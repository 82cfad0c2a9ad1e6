// Durable state: jobs and API keys in one SQLite file in WAL mode. SQLite calls
// are synchronous, which is what makes the queue-limit check and the insert one
// atomic step without locks (a handful of microseconds on the event loop);
// everything that touches video files is async and lives elsewhere.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import type { PreparedPrompt } from "./generator.js";

export type JobStatus = "queued" | "in_progress" | "completed" | "failed" | "cancelled";
export const JOB_STATUSES: readonly JobStatus[] = [
  "queued",
  "in_progress",
  "completed",
  "failed",
  "cancelled",
];
export const TERMINAL: ReadonlySet<JobStatus> = new Set(["completed", "failed", "cancelled"]);

/** What the client asked for, resolved (the generator request plus API-level facts). */
export interface StoredRequest {
  model: string;
  prompt: string;
  negativePrompt: string;
  width: number;
  height: number;
  frames: number;
  fps: number;
  steps: number;
  guidance: number;
  seed: number;
  strength?: number;
  /** Input file name inside the job folder (never a client-supplied name). */
  image?: string;
  /** The end image's file name inside the job folder. */
  endImage?: string;
  video?: string;
  /** Rewrite the prompt onto the model's caption style, if it has one (absent in jobs stored before it existed: true). */
  rewrite?: boolean;
  /** LoRAs by name with their strengths (absent: none). */
  loras?: { name: string; strength: number }[];
  /** Two-expert models: the second expert's guidance (absent: guidance) and LoRAs (absent: none). */
  guidance2?: number;
  loras2?: { name: string; strength: number }[];
  /** An explicit schedule; steps is its length. */
  timesteps?: number[];
  sigmas?: number[];
}

export interface StoredResult {
  file: string;
  contentType: string;
  bytes: number;
  thumbnail?: string;
  width: number;
  height: number;
  frames: number;
  fps: number;
}

export interface JobRow {
  seq: number;
  id: string;
  keyId: string | null;
  status: JobStatus;
  request: StoredRequest;
  progress: number;
  step: number;
  totalSteps: number;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  /** Runs started (a run drained and requeued counts too). */
  attempts: number;
  /** Runs that ended in an unclean stop (a killed server); a drain is not one. */
  interruptions: number;
  error: { code: string; message: string } | null;
  result: StoredResult | null;
  timings: Record<string, number> | null;
  /**
   * What the model's text encoder gets: known at submission when the server has the
   * model, else once a worker reports the result; null until then.
   */
  prepared: PreparedPrompt | null;
}

interface RawJob {
  seq: number;
  id: string;
  key_id: string | null;
  status: JobStatus;
  request: string;
  progress: number;
  step: number;
  total_steps: number;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  attempts: number;
  interruptions: number;
  error: string | null;
  result: string | null;
  timings: string | null;
  prompt_used: string | null;
  prompt_rewrite: string | null;
}

export interface ApiKeyInfo {
  id: string;
  name: string;
  /** The key's first characters, enough to tell keys apart in a list. */
  prefix: string;
  createdAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

// 1: jobs and api_keys. 2: jobs.prompt_used and jobs.prompt_rewrite. 3: jobs.interruptions.
const SCHEMA_VERSION = 3;

function fromRaw(r: RawJob): JobRow {
  return {
    seq: r.seq,
    id: r.id,
    keyId: r.key_id,
    status: r.status,
    request: JSON.parse(r.request) as StoredRequest,
    progress: r.progress,
    step: r.step,
    totalSteps: r.total_steps,
    createdAt: r.created_at,
    startedAt: r.started_at,
    completedAt: r.completed_at,
    attempts: r.attempts,
    interruptions: r.interruptions,
    error: r.error ? (JSON.parse(r.error) as JobRow["error"]) : null,
    result: r.result ? (JSON.parse(r.result) as StoredResult) : null,
    timings: r.timings ? (JSON.parse(r.timings) as Record<string, number>) : null,
    prepared:
      r.prompt_used === null
        ? null
        : {
            prompt: r.prompt_used,
            rewrite: r.prompt_rewrite ? (JSON.parse(r.prompt_rewrite) as PreparedPrompt["rewrite"]) : null,
          },
  };
}

function preparedParams(p: PreparedPrompt | null | undefined) {
  return {
    hasPrompt: p ? 1 : 0,
    promptUsed: p?.prompt ?? null,
    promptRewrite: p?.rewrite ? JSON.stringify(p.rewrite) : null,
  };
}

function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare(
      `INSERT INTO jobs (id, key_id, status, request, total_steps, created_at, prompt_used, prompt_rewrite)
       VALUES (@id, @keyId, 'queued', @request, @totalSteps, @createdAt, @promptUsed, @promptRewrite)`,
    ),
    countQueued: db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE status = 'queued'`),
    get: db.prepare(`SELECT * FROM jobs WHERE id = ? AND key_id IS ?`),
    getAny: db.prepare(`SELECT * FROM jobs WHERE id = ?`),
    next: db.prepare(`SELECT * FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1`),
    start: db.prepare(
      `UPDATE jobs SET status = 'in_progress', started_at = ?, attempts = attempts + 1, progress = 0, step = 0
       WHERE id = ? AND status = 'queued'`,
    ),
    progress: db.prepare(
      `UPDATE jobs SET progress = ?, step = ?, total_steps = ? WHERE id = ? AND status = 'in_progress'`,
    ),
    // The run's own report of the prompt it used replaces the submission-time one (when it gave one).
    complete: db.prepare(
      `UPDATE jobs SET status = 'completed', progress = 100, completed_at = @now, result = @result, timings = @timings,
         prompt_used = CASE WHEN @hasPrompt THEN @promptUsed ELSE prompt_used END,
         prompt_rewrite = CASE WHEN @hasPrompt THEN @promptRewrite ELSE prompt_rewrite END
       WHERE id = @id AND status = 'in_progress'`,
    ),
    fail: db.prepare(
      `UPDATE jobs SET status = 'failed', completed_at = ?, error = ?, timings = ?
       WHERE id = ? AND status IN ('queued', 'in_progress')`,
    ),
    cancel: db.prepare(
      `UPDATE jobs SET status = 'cancelled', completed_at = ?, error = NULL
       WHERE id = ? AND status IN ('queued', 'in_progress')`,
    ),
    requeue: db.prepare(
      `UPDATE jobs SET status = 'queued', progress = 0, step = 0, started_at = NULL,
         interruptions = interruptions + @counted
       WHERE id = @id AND status = 'in_progress'`,
    ),
    requeueAll: db.prepare(
      `UPDATE jobs SET status = 'queued', progress = 0, step = 0, started_at = NULL, interruptions = interruptions + 1
       WHERE status = 'in_progress'`,
    ),
    delete: db.prepare(`DELETE FROM jobs WHERE id = ? AND status IN ('completed', 'failed', 'cancelled')`),
    counts: db.prepare(`SELECT status, COUNT(*) AS n FROM jobs GROUP BY status`),
    queuedBefore: db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE status = 'queued' AND seq < ?`),
    keyByHash: db.prepare(`SELECT id FROM api_keys WHERE hash = ? AND revoked_at IS NULL`),
    activeKeys: db.prepare(`SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL`),
    keyState: db.prepare(
      `SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE revoked_at IS NULL) AS active FROM api_keys`,
    ),
    touchKey: db.prepare(`UPDATE api_keys SET last_used_at = ? WHERE id = ?`),
  };
}

export function hashKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

export class Store {
  readonly db: Database.Database;
  #closed = false;
  readonly #st: ReturnType<typeof prepareStatements>;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    // NORMAL in WAL mode loses at most the last transactions on power loss, never
    // consistency; FULL would fsync on every progress update.
    this.db.pragma("synchronous = NORMAL");
    // `tessera keys create` writes from another process while the server runs.
    this.db.pragma("busy_timeout = 5000");
    this.#migrate();
    this.#st = prepareStatements(this.db);
  }

  #migrate(): void {
    const check = () => {
      const version = this.db.pragma("user_version", { simple: true }) as number;
      if (version > SCHEMA_VERSION)
        throw new Error(
          `the data folder's database has schema version ${version}, newer than this server's ${SCHEMA_VERSION}; upgrade Tessera`,
        );
      return version;
    };
    if (check() === SCHEMA_VERSION) return;
    // One write transaction, the version read again inside it: `tessera keys` in another
    // process may be migrating the same file, and a half-migrated database must never be seen.
    this.db
      .transaction(() => {
        const version = check();
        if (version < 1) this.#createV1();
        if (version < 2)
          this.db.exec(`
            ALTER TABLE jobs ADD COLUMN prompt_used TEXT;
            ALTER TABLE jobs ADD COLUMN prompt_rewrite TEXT;
          `);
        // Before 3 every requeue counted as an interruption: a queued job's runs all were,
        // and a running one's were but the current.
        if (version < 3)
          this.db.exec(`
            ALTER TABLE jobs ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
            UPDATE jobs SET interruptions = CASE status
              WHEN 'queued' THEN attempts WHEN 'in_progress' THEN MAX(attempts - 1, 0) ELSE 0 END;
          `);
        this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
      })
      .immediate();
  }

  #createV1(): void {
    this.db.exec(`
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
    `);
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.db.close();
  }

  /**
   * Inserts a queued job unless `maxQueued` jobs are already waiting. The check and
   * the insert run in one transaction, so concurrent submissions cannot overshoot.
   */
  insertJob(
    j: {
      id: string;
      keyId: string | null;
      request: StoredRequest;
      totalSteps: number;
      /** The prompt as the model will get it, when known at submission. */
      prepared?: PreparedPrompt | null;
    },
    maxQueued: number,
  ): { ok: true } | { ok: false; queued: number } {
    return this.db
      .transaction(() => {
        const queued = (this.#st.countQueued.get() as { n: number }).n;
        if (queued >= maxQueued) return { ok: false as const, queued };
        this.#st.insert.run({
          id: j.id,
          keyId: j.keyId,
          request: JSON.stringify(j.request),
          totalSteps: j.totalSteps,
          createdAt: Date.now(),
          promptUsed: j.prepared?.prompt ?? null,
          promptRewrite: j.prepared?.rewrite ? JSON.stringify(j.prepared.rewrite) : null,
        });
        return { ok: true as const };
      })
      .immediate();
  }

  queuedCount(): number {
    return (this.#st.countQueued.get() as { n: number }).n;
  }

  /** How many queued jobs are ahead of this one. */
  queuePosition(seq: number): number {
    return (this.#st.queuedBefore.get(seq) as { n: number }).n;
  }

  /** A job as its owner sees it: another key's job (or an open-mode job, to a key) is simply absent. */
  getJob(id: string, keyId: string | null): JobRow | null {
    const r = this.#st.get.get(id, keyId) as RawJob | undefined;
    return r ? fromRaw(r) : null;
  }

  getAnyJob(id: string): JobRow | null {
    const r = this.#st.getAny.get(id) as RawJob | undefined;
    return r ? fromRaw(r) : null;
  }

  /** Newest first (or oldest first), after the job `after` in that order; null if `after` is not this key's. */
  listJobs(
    keyId: string | null,
    o: { limit: number; after?: string; order: "asc" | "desc" },
  ): { rows: JobRow[]; hasMore: boolean } | null {
    let cursor: number | null = null;
    if (o.after !== undefined) {
      const a = this.getJob(o.after, keyId);
      if (!a) return null;
      cursor = a.seq;
    }
    const cmp = o.order === "desc" ? "<" : ">";
    const dir = o.order === "desc" ? "DESC" : "ASC";
    const sql =
      `SELECT * FROM jobs WHERE key_id IS ?` +
      (cursor !== null ? ` AND seq ${cmp} ?` : "") +
      ` ORDER BY seq ${dir} LIMIT ?`;
    const args: unknown[] = [keyId];
    if (cursor !== null) args.push(cursor);
    args.push(o.limit + 1);
    const raw = this.db.prepare(sql).all(...args) as RawJob[];
    return { rows: raw.slice(0, o.limit).map(fromRaw), hasMore: raw.length > o.limit };
  }

  nextQueued(): JobRow | null {
    const r = this.#st.next.get() as RawJob | undefined;
    return r ? fromRaw(r) : null;
  }

  /** queued → in_progress; false if someone (a DELETE) got there first. */
  markStarted(id: string): boolean {
    return this.#st.start.run(Date.now(), id).changes === 1;
  }

  setProgress(id: string, progress: number, step: number, total: number): void {
    this.#st.progress.run(progress, step, total, id);
  }

  /** in_progress → completed, exactly once; `prepared` (the run's report of its prompt) is stored with it. */
  markCompleted(
    id: string,
    result: StoredResult,
    timings: Record<string, number>,
    prepared?: PreparedPrompt | null,
  ): boolean {
    return (
      this.#st.complete.run({
        id,
        now: Date.now(),
        result: JSON.stringify(result),
        timings: JSON.stringify(timings),
        ...preparedParams(prepared),
      }).changes === 1
    );
  }

  markFailed(
    id: string,
    error: { code: string; message: string },
    timings?: Record<string, number>,
  ): boolean {
    return (
      this.#st.fail.run(Date.now(), JSON.stringify(error), timings ? JSON.stringify(timings) : null, id)
        .changes === 1
    );
  }

  markCancelled(id: string): boolean {
    return this.#st.cancel.run(Date.now(), id).changes === 1;
  }

  /** in_progress → queued after a run that stopped uncleanly: counts an interruption. */
  requeue(id: string): boolean {
    return this.#st.requeue.run({ id, counted: 1 }).changes === 1;
  }

  /** in_progress → queued after a drain (a clean stop): not an interruption. */
  requeueDrained(id: string): boolean {
    return this.#st.requeue.run({ id, counted: 0 }).changes === 1;
  }

  /**
   * At start-up: jobs a killed server left running go back to the queue, in their
   * original order, each with one more interruption.
   */
  requeueInterrupted(): number {
    return this.#st.requeueAll.run().changes;
  }

  deleteFinished(id: string): boolean {
    return this.#st.delete.run(id).changes === 1;
  }

  counts(): Record<JobStatus, number> {
    const out = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    for (const r of this.#st.counts.all() as { status: JobStatus; n: number }[]) out[r.status] = r.n;
    return out;
  }

  // --- API keys ---

  /** Makes a key and returns it; only its SHA-256 is stored, so this is the one time it can be shown. */
  createKey(name = ""): { key: string; info: ApiKeyInfo } {
    const key = `tsk_${randomBytes(32).toString("base64url")}`;
    const id = `key_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const info: ApiKeyInfo = {
      id,
      name,
      prefix: `${key.slice(0, 10)}…`,
      createdAt: Date.now(),
      revokedAt: null,
      lastUsedAt: null,
    };
    this.db
      .prepare(`INSERT INTO api_keys (id, hash, name, prefix, created_at) VALUES (?, ?, ?, ?, ?)`)
      .run(id, hashKey(key), name, info.prefix, info.createdAt);
    return { key, info };
  }

  listKeys(): ApiKeyInfo[] {
    return (
      this.db.prepare(`SELECT * FROM api_keys ORDER BY created_at, rowid`).all() as {
        id: string;
        name: string;
        prefix: string;
        created_at: number;
        revoked_at: number | null;
        last_used_at: number | null;
      }[]
    ).map((r) => ({
      id: r.id,
      name: r.name,
      prefix: r.prefix,
      createdAt: r.created_at,
      revokedAt: r.revoked_at,
      lastUsedAt: r.last_used_at,
    }));
  }

  /** Revokes by id or by the full key; false if no such active key. */
  revokeKey(idOrKey: string): boolean {
    const byKey = idOrKey.startsWith("tsk_");
    const res = this.db
      .prepare(`UPDATE api_keys SET revoked_at = ? WHERE ${byKey ? "hash" : "id"} = ? AND revoked_at IS NULL`)
      .run(Date.now(), byKey ? hashKey(idOrKey) : idOrKey);
    return res.changes === 1;
  }

  /** Open mode is "no active key exists"; asked on every request so a key made by the CLI applies at once. */
  hasActiveKeys(): boolean {
    return (this.#st.activeKeys.get() as { n: number }).n > 0;
  }

  /**
   * "active" when a key can be used, "revoked" when keys were made and all are revoked
   * (open mode must then be asked for), "none" when no key was ever made.
   */
  keyState(): "active" | "revoked" | "none" {
    const r = this.#st.keyState.get() as { n: number; active: number };
    return r.active > 0 ? "active" : r.n > 0 ? "revoked" : "none";
  }

  keyIdFor(key: string): string | null {
    const r = this.#st.keyByHash.get(hashKey(key)) as { id: string } | undefined;
    return r?.id ?? null;
  }

  touchKey(id: string): void {
    this.#st.touchKey.run(Date.now(), id);
  }
}
