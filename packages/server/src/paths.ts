// Every path the server touches is built here, from the data folder, a job id that
// has passed UUID_RE, and names this module chooses. No string from a request is
// ever joined into a path, so no request can reach outside the data folder.
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";

/** Canonical lowercase UUID (what randomUUID makes); anything else is not an id of ours. */
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Names a generator may return for its outputs: plain file names, no folders, no dot-files. */
const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function isJobId(s: unknown): s is string {
  return typeof s === "string" && UUID_RE.test(s);
}

export function isSafeFileName(s: unknown): s is string {
  return typeof s === "string" && FILE_NAME_RE.test(s) && !s.includes("..");
}

function checkId(id: string): string {
  if (!isJobId(id)) throw new Error(`internal: '${id}' is not a job id`);
  return id;
}

function checkName(name: string): string {
  if (!isSafeFileName(name)) throw new Error(`internal: '${name}' is not a plain file name`);
  return name;
}

export class DataDir {
  readonly root: string;
  constructor(root: string) {
    this.root = resolve(root);
  }
  get dbFile(): string {
    return join(this.root, "tessera.db");
  }
  get jobsDir(): string {
    return join(this.root, "jobs");
  }
  get tmpDir(): string {
    return join(this.root, "tmp");
  }
  jobDir(id: string): string {
    return join(this.jobsDir, checkId(id));
  }
  /** The finished outputs of a job. */
  outDir(id: string): string {
    return join(this.jobDir(id), "out");
  }
  outFile(id: string, name: string): string {
    return join(this.outDir(id), checkName(name));
  }
  inputFile(id: string, name: string): string {
    return join(this.jobDir(id), checkName(name));
  }
  /** A fresh staging folder name for one run of a job (runs after a crash get a new one). */
  stagingDir(id: string): string {
    return join(this.jobDir(id), `.staging-${randomBytes(6).toString("hex")}`);
  }
  tmpFile(): string {
    return join(this.tmpDir, `${randomBytes(12).toString("hex")}.part`);
  }

  async init(): Promise<void> {
    await mkdir(this.jobsDir, { recursive: true });
    // Uploads that were in flight when the server stopped belong to no job.
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  /** Removes staging folders left by runs that never finished (the job is queued again). */
  async removeStaging(id: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.jobDir(id));
    } catch {
      return;
    }
    await Promise.all(
      names
        .filter((n) => n.startsWith(".staging-"))
        .map((n) => rm(join(this.jobDir(id), n), { recursive: true, force: true })),
    );
  }

  async removeJob(id: string): Promise<void> {
    await rm(this.jobDir(id), { recursive: true, force: true });
  }
}
