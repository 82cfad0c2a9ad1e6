// One server per data folder: a second server on a folder in use exits before it
// touches any job (and names the holder), a killed holder's lock is taken over, and
// readers of the folder (`tessera keys`) work beside a running server.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createServer } from "./app.js";
import { DataFolderLockedError, DataLock, LOCK_FILE } from "./data-lock.js";
import { Store } from "./store.js";
import { FakeVideoGenerator } from "./testing/fake-generator.js";
import { api, startFake, tempDir, waitFor, waitForStatus } from "./testing/harness.js";

describe("one server per data folder", () => {
  it("refuses a second server on a folder in use before it touches the running job", async () => {
    const h = await startFake({ fake: { stepMs: 40 } });
    try {
      const c = await api(h.url, "/v1/videos", { json: { prompt: "keep running", steps: 25 } });
      await waitFor("the run", async () => (await api(h.url, `/v1/videos/${c.body.id}`)).body.step >= 2);
      const staging = (await readdir(join(h.dataDir, "jobs", c.body.id))).filter((n) =>
        n.startsWith(".staging-"),
      );
      expect(staging).toHaveLength(1);
      await writeFile(join(h.dataDir, "tmp", "upload-in-flight.part"), "x");

      const second = createServer({ dataDir: h.dataDir, generator: new FakeVideoGenerator(), port: 0 });
      await expect(second).rejects.toBeInstanceOf(DataFolderLockedError);
      await expect(second).rejects.toThrow(
        new RegExp(`data folder ${h.dataDir} is in use by another tessera server \\(pid ${process.pid}\\)`),
      );
      // Nothing of the first server's was touched: its run, its staging folder, the uploads in flight.
      expect(await readdir(join(h.dataDir, "jobs", c.body.id))).toEqual(staging);
      expect(existsSync(join(h.dataDir, "tmp", "upload-in-flight.part"))).toBe(true);
      const done = await waitForStatus(h.url, c.body.id, "completed");
      expect(done.attempts).toBe(1);
    } finally {
      await h.close();
    }
  });

  it("frees the folder on close, so the next server starts", async () => {
    const h = await startFake();
    await h.close({ keepData: true });
    expect(existsSync(join(h.dataDir, LOCK_FILE))).toBe(false);
    const h2 = await startFake({ dataDir: h.dataDir });
    expect(existsSync(join(h.dataDir, LOCK_FILE))).toBe(true);
    await h2.close();
  });

  it("lets readers (tessera keys) use the database beside a running server", async () => {
    const h = await startFake();
    try {
      const store = new Store(join(h.dataDir, "tessera.db"));
      const { key } = store.createKey("made beside the server");
      store.close();
      expect((await api(h.url, "/v1/videos", { key })).status).toBe(200);
    } finally {
      await h.close();
    }
  });

  it("takes over the lock of a server that was killed (its pid is gone)", async () => {
    const dir = await tempDir();
    try {
      // A process that has exited: its pid is free (or, rarely, someone else's now, which the start time tells apart).
      const child = spawn(process.execPath, ["-e", ""]);
      const pid = child.pid as number;
      await new Promise((r) => child.once("exit", r));
      await writeFile(
        join(dir, LOCK_FILE),
        JSON.stringify({ pid, host: hostname(), procStart: "1", startedAt: "2020-01-01T00:00:00.000Z" }),
      );
      const lock = await DataLock.acquire(dir);
      expect(JSON.parse(await readFile(join(dir, LOCK_FILE), "utf8")).pid).toBe(process.pid);
      await lock.release();
      expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("takes over a lock whose pid now belongs to another process (pid reuse)", async () => {
    const dir = await tempDir();
    try {
      // Our own pid, but with a start time that is not ours: a dead server whose pid was reused.
      await writeFile(
        join(dir, LOCK_FILE),
        JSON.stringify({ pid: process.pid, host: hostname(), procStart: "0", startedAt: "x" }),
      );
      const lock = await DataLock.acquire(dir);
      await lock.release();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(process.platform !== "linux")("names another host's holder and how to clear it", async () => {
    const dir = await tempDir();
    try {
      await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: "gpu-7", startedAt: "x" }));
      await expect(DataLock.acquire(dir)).rejects.toThrow(
        /in use by another tessera server \(pid 1 on gpu-7\).*if that server is gone, remove .*server\.lock/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("lets only one of two servers starting at once have a stale folder", async () => {
    const dir = await tempDir();
    try {
      await writeFile(join(dir, LOCK_FILE), "");
      // An empty lock file older than a moment: its writer died between create and write.
      const old = new Date(Date.now() - 60_000);
      const { utimes } = await import("node:fs/promises");
      await utimes(join(dir, LOCK_FILE), old, old);
      const results = await Promise.allSettled([DataLock.acquire(dir), DataLock.acquire(dir)]);
      const won = results.filter((r) => r.status === "fulfilled");
      expect(won).toHaveLength(1);
      expect(results.find((r) => r.status === "rejected")?.reason).toBeInstanceOf(DataFolderLockedError);
      await (won[0] as PromiseFulfilledResult<DataLock>).value.release();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
