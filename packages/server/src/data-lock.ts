// One server per data folder, as databases do it: `<data>/server.lock` holds the
// running server's pid, host and start time, made with an exclusive create so two
// servers starting at once cannot both get it. A server that was SIGKILLed leaves
// its file behind; the next one sees that the pid is gone (or now belongs to another
// process) and takes the lock over. Only the server that holds it recovers jobs,
// clears tmp/ or runs any; readers (`tessera keys`, the workers of Redis mode) never
// take it.
import { readFileSync, rmSync } from "node:fs";
import { open, readFile, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";

export const LOCK_FILE = "server.lock";
// The takeover of a stale lock runs under a second lock; one older than this was left
// by a process that died within the few milliseconds a takeover takes.
const TAKEOVER_STALE_MS = 10_000;

interface Holder {
  pid: number;
  host: string;
  /** The holder's start time as the kernel counts it (Linux), so a reused pid is told apart. */
  procStart: string | null;
  startedAt: string;
}

/** A second server on a folder that one already serves. */
export class DataFolderLockedError extends Error {
  override name = "DataFolderLockedError";
  constructor(
    readonly dataDir: string,
    readonly holder: { pid: number; host: string },
  ) {
    super(
      `the data folder ${dataDir} is in use by another tessera server (pid ${holder.pid}` +
        `${holder.host !== hostname() ? ` on ${holder.host}` : ""}); stop it first, or give this one ` +
        `another --data folder` +
        (holder.host !== hostname() ? ` (if that server is gone, remove ${join(dataDir, LOCK_FILE)})` : ""),
    );
  }
}

export class DataLock {
  #released = false;
  readonly #content: string;
  readonly #onExit = () => this.releaseSync();

  private constructor(
    readonly file: string,
    content: string,
  ) {
    this.#content = content;
    // A crash that still runs exit handlers (an uncaught exception) frees the folder at once.
    process.once("exit", this.#onExit);
  }

  /** Takes the lock on `dataDir` (which must exist), or throws DataFolderLockedError naming the holder. */
  static async acquire(dataDir: string): Promise<DataLock> {
    const file = join(dataDir, LOCK_FILE);
    const me: Holder = {
      pid: process.pid,
      host: hostname(),
      procStart: procStart(process.pid),
      startedAt: new Date().toISOString(),
    };
    const content = `${JSON.stringify(me)}\n`;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await createExclusive(file, content)) return new DataLock(file, content);
      const holder = await readHolder(file);
      if (holder === "gone") continue; // released between our create and our read
      if (holder && isAlive(holder)) throw new DataFolderLockedError(dataDir, holder);
      // Stale (its process is gone) or unreadable (a holder killed mid-write): take it over,
      // under a second lock so two servers doing this at once cannot both win.
      await takeOver(file, holder);
    }
    throw new Error(`could not take the lock ${file}; is another server starting on ${dataDir}?`);
  }

  /** Removes the lock file if it is still ours. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    process.off("exit", this.#onExit);
    const now = await readFile(this.file, "utf8").catch(() => null);
    if (now === this.#content) await rm(this.file, { force: true });
  }

  /** release() for process exit, where nothing asynchronous runs. */
  releaseSync(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      if (readFileSync(this.file, "utf8") === this.#content) rmSync(this.file, { force: true });
    } catch {
      // Already gone, or unreadable: the next server will find it stale.
    }
  }
}

async function createExclusive(file: string, content: string): Promise<boolean> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, "wx", 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return true;
}

/** The holder, null if the file is unreadable or not ours, "gone" if it no longer exists. */
async function readHolder(file: string): Promise<Holder | null | "gone"> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return "gone";
    throw e;
  }
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    if (typeof h.pid === "number" && typeof h.host === "string")
      return {
        pid: h.pid,
        host: h.host,
        procStart: h.procStart ?? null,
        startedAt: String(h.startedAt ?? ""),
      };
  } catch {}
  // Empty or half-written: its writer died between the create and the write, unless it
  // is writing right now, which a lock this young may be.
  const s = await stat(file).catch(() => null);
  if (s && Date.now() - s.mtimeMs < 2000) return { pid: -1, host: "", procStart: null, startedAt: "" };
  return null;
}

function isAlive(h: Holder): boolean {
  // A lock being written this instant (see readHolder) counts as held.
  if (h.pid === -1) return true;
  // Another host's pid cannot be checked from here: held, and the message says how to clear it.
  if (h.host !== hostname()) return true;
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    // EPERM: the pid exists but belongs to another user, which a server of ours may run as.
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  // The pid is in use; it is still our server only if that process started when the holder did.
  const now = procStart(h.pid);
  return h.procStart === null || now === null || now === h.procStart;
}

async function takeOver(file: string, stale: Holder | null): Promise<void> {
  const guard = `${file}.takeover`;
  if (!(await createExclusive(guard, `${process.pid}\n`))) {
    const s = await stat(guard).catch(() => null);
    if (s && Date.now() - s.mtimeMs > TAKEOVER_STALE_MS) await rm(guard, { force: true });
    await new Promise((r) => setTimeout(r, 50));
    return;
  }
  try {
    // Still the same stale lock? Then nobody took it over meanwhile and it is ours to remove.
    const again = await readHolder(file);
    const same =
      again === "gone" ||
      (again === null && stale === null) ||
      (again !== null && stale !== null && again.pid === stale.pid && again.startedAt === stale.startedAt);
    if (same) await rm(file, { force: true });
  } finally {
    await rm(guard, { force: true });
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); null off Linux. */
function procStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}
