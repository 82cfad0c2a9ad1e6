import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DistributedEnvError,
  distributedEnv,
  fileRendezvous,
  RendezvousError,
  rankDeviceIndex,
  rendezvous,
  tcpRendezvous,
} from "./rendezvous.js";

const here = dirname(fileURLToPath(import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("distributedEnv", () => {
  it("reads torchrun's variables", () => {
    expect(distributedEnv({})).toBeNull();
    expect(
      distributedEnv({
        RANK: "3",
        WORLD_SIZE: "8",
        LOCAL_RANK: "3",
        LOCAL_WORLD_SIZE: "4",
        MASTER_ADDR: "node0",
        MASTER_PORT: "29500",
      }),
    ).toEqual({
      rank: 3,
      worldSize: 8,
      localRank: 3,
      localWorldSize: 4,
      masterAddr: "node0",
      masterPort: 29500,
    });
    // One host: LOCAL_RANK defaults to RANK; a file rendezvous needs no address.
    expect(distributedEnv({ RANK: "1", WORLD_SIZE: "2", TESSERA_NCCL_ID_FILE: "/tmp/x.id" })).toEqual({
      rank: 1,
      worldSize: 2,
      localRank: 1,
      localWorldSize: 2,
      idFile: "/tmp/x.id",
    });
    expect(
      distributedEnv({
        RANK: "0",
        WORLD_SIZE: "2",
        MASTER_ADDR: "h",
        MASTER_PORT: "1",
        TESSERA_RENDEZVOUS_PORT: "7",
      })?.masterPort,
    ).toBe(7);
    expect(distributedEnv({ RANK: "0", WORLD_SIZE: "1" })).toEqual({
      rank: 0,
      worldSize: 1,
      localRank: 0,
      localWorldSize: 1,
    });
  });

  it("names the variable that is missing or wrong", () => {
    const bad: [NodeJS.ProcessEnv, RegExp][] = [
      [{ RANK: "0" }, /WORLD_SIZE is not/],
      [{ WORLD_SIZE: "2" }, /RANK is not/],
      [{ RANK: "2", WORLD_SIZE: "2" }, /RANK 2 must be below WORLD_SIZE 2/],
      [{ RANK: "x", WORLD_SIZE: "2" }, /RANK must be an integer/],
      [{ RANK: "0", WORLD_SIZE: "0" }, /WORLD_SIZE must be an integer from 1/],
      [{ RANK: "0", WORLD_SIZE: "2", MASTER_PORT: "1" }, /MASTER_ADDR is not set/],
      [{ RANK: "0", WORLD_SIZE: "2", MASTER_ADDR: "h" }, /MASTER_PORT is not set/],
      [{ RANK: "0", WORLD_SIZE: "2", MASTER_ADDR: "h", MASTER_PORT: "70000" }, /MASTER_PORT must be/],
      [
        { RANK: "5", WORLD_SIZE: "8", LOCAL_WORLD_SIZE: "4", MASTER_ADDR: "h", MASTER_PORT: "1" },
        /LOCAL_RANK is not set/,
      ],
      [
        {
          RANK: "5",
          WORLD_SIZE: "8",
          LOCAL_RANK: "4",
          LOCAL_WORLD_SIZE: "4",
          MASTER_ADDR: "h",
          MASTER_PORT: "1",
        },
        /LOCAL_RANK 4 must be below LOCAL_WORLD_SIZE 4/,
      ],
    ];
    for (const [env, re] of bad) {
      expect(() => distributedEnv(env)).toThrow(DistributedEnvError);
      expect(() => distributedEnv(env)).toThrow(re);
    }
  });

  it("picks the GPU: the only visible one, else LOCAL_RANK", () => {
    const env = { rank: 5, worldSize: 8, localRank: 1, localWorldSize: 4 };
    expect(rankDeviceIndex(env, 1)).toBe(0);
    expect(rankDeviceIndex(env, 4)).toBe(1);
    expect(() => rankDeviceIndex({ ...env, localRank: 3 }, 2)).toThrow(/LOCAL_RANK 3 needs a GPU/);
    expect(() => rankDeviceIndex(env, 0)).toThrow(/no CUDA device/);
  });
});

describe("TCP rendezvous (in one process)", () => {
  it("hands rank 0's bytes to every rank, whichever starts first", async () => {
    for (const n of [1, 2, 4]) {
      const port = await freePort();
      const id = randomBytes(128);
      // The other ranks start before rank 0 listens: they retry until it does.
      const others = Array.from({ length: n - 1 }, (_, i) =>
        tcpRendezvous({ rank: i + 1, worldSize: n, host: "127.0.0.1", port, timeoutMs: 10_000 }),
      );
      await new Promise((r) => setTimeout(r, 150));
      const zero = tcpRendezvous({ rank: 0, worldSize: n, host: "127.0.0.1", port, payload: () => id });
      const got = await Promise.all([zero, ...others]);
      for (const g of got) expect(hex(g)).toBe(hex(id));
    }
  });

  it("refuses a rank with another world size, on both sides", async () => {
    const port = await freePort();
    const zero = tcpRendezvous({
      rank: 0,
      worldSize: 3,
      host: "127.0.0.1",
      port,
      payload: () => randomBytes(8),
      timeoutMs: 5000,
    });
    const zeroErr = zero.catch((e: unknown) => e);
    const bad = tcpRendezvous({ rank: 1, worldSize: 2, host: "127.0.0.1", port, timeoutMs: 5000 });
    await expect(bad).rejects.toThrow(
      /rank 0 refused rank 1: rank 1 says the world has 2 ranks but rank 0 has 3/,
    );
    expect(await zeroErr).toBeInstanceOf(RendezvousError);
  });

  it("times out naming the ranks that never came, or rank 0's address", async () => {
    const port = await freePort();
    await expect(
      tcpRendezvous({
        rank: 0,
        worldSize: 3,
        host: "127.0.0.1",
        port,
        payload: () => randomBytes(8),
        timeoutMs: 300,
      }),
    ).rejects.toThrow(/rank\(s\) 1, 2 of 3 did not connect within 0.3 s/);
    const port2 = await freePort();
    await expect(
      tcpRendezvous({ rank: 2, worldSize: 3, host: "127.0.0.1", port: port2, timeoutMs: 300 }),
    ).rejects.toThrow(
      new RegExp(
        `rank 2: could not reach rank 0's rendezvous at 127.0.0.1:${port2} within 0.3 s \\(last: ECONNREFUSED\\)`,
      ),
    );
  });

  it("says when the port is taken", async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
    const a = s.address();
    const port = typeof a === "object" && a ? a.port : 0;
    try {
      await expect(
        tcpRendezvous({ rank: 0, worldSize: 2, host: "127.0.0.1", port, payload: () => randomBytes(8) }),
      ).rejects.toThrow(/in use .*TESSERA_RENDEZVOUS_PORT/);
    } finally {
      s.close();
    }
  });
});

describe("file rendezvous", () => {
  it("rank 0 publishes by rename, the others poll", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tessera-rdv-"));
    try {
      const path = join(dir, "nccl.id");
      const id = randomBytes(128);
      const env = (rank: number) => ({
        rank,
        worldSize: 3,
        localRank: rank,
        localWorldSize: 3,
        idFile: path,
      });
      const others = [1, 2].map((r) => rendezvous(env(r), () => randomBytes(128), 128, 5000));
      await new Promise((r) => setTimeout(r, 100));
      const got = await Promise.all([rendezvous(env(0), () => id, 128), ...others]);
      for (const g of got) expect(hex(g)).toBe(hex(id));
      expect(hex(await readFile(path))).toBe(hex(id));
      await expect(
        fileRendezvous({ path: join(dir, "none"), rank: 1, bytes: 128, timeoutMs: 200 }),
      ).rejects.toThrow(/id file .*none did not appear within 0.2 s/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("TCP rendezvous between processes", () => {
  let dir = "";
  beforeAll(async () => {
    // rendezvous.ts uses only node builtins: transpile that one file for the children.
    dir = await mkdtemp(join(tmpdir(), "tessera-rdv-proc-"));
    const src = await readFile(join(here, "rendezvous.ts"), "utf8");
    const js = ts.transpileModule(src, {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    await writeFile(join(dir, "rendezvous.mjs"), js);
    await writeFile(
      join(dir, "rank.mjs"),
      `import { randomBytes } from "node:crypto";
import { distributedEnv, rendezvous } from "./rendezvous.mjs";
const env = distributedEnv();
const id = await rendezvous(env, () => randomBytes(128), 128, 20000);
process.stdout.write(JSON.stringify({ rank: env.rank, id: Buffer.from(id).toString("hex") }));
`,
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("4 rank processes with torchrun's variables get rank 0's id", async () => {
    const port = await freePort();
    const n = 4;
    const runs = Array.from({ length: n }, (_, rank) => {
      const child = spawn(process.execPath, [join(dir, "rank.mjs")], {
        env: {
          PATH: process.env.PATH ?? "",
          RANK: String(rank),
          WORLD_SIZE: String(n),
          LOCAL_RANK: String(rank),
          LOCAL_WORLD_SIZE: String(n),
          MASTER_ADDR: "127.0.0.1",
          MASTER_PORT: String(port),
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (d) => {
        out += d;
      });
      child.stderr.on("data", (d) => {
        err += d;
      });
      return new Promise<{ rank: number; id: string }>((resolve, reject) =>
        child.on("exit", (code) =>
          code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`rank ${rank} exited ${code}: ${err}`)),
        ),
      );
    });
    const got = await Promise.all(runs);
    expect(got.map((g) => g.rank)).toEqual([0, 1, 2, 3]);
    expect(new Set(got.map((g) => g.id)).size).toBe(1);
    expect(got[0]?.id).toMatch(/^[0-9a-f]{256}$/);
  });
});
