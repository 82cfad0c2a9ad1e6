// `tessera serve` under load and under the faults an operator meets over months, on the
// bundled demo model on the CPU, through the real CLI (one process per server):
// - load: concurrent submissions over a small queue (submitted, accepted, 429s, lost,
//   duplicated; Retry-After against when a slot really freed);
// - two servers on one data folder; a full disk (a small tmpfs); an outputs folder that
//   cannot be written (a read-only bind mount); rolling SIGTERM restarts with a short
//   drain; an oversized request and a huge PNG inside a 4 GiB memory cgroup; cross-origin
//   and bad-Host requests.
// The file-system and cgroup runs need root (mount, cgroup v1 or v2 writes) and are
// reported as skipped, with the reason, without it. Writes
// benchmarks/results/server-faults-cpu.{json,md} (the date is inside).
//   node server-faults.mjs [--concurrent 200] [--queue 50] [--out DIR]
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createDeflate } from "node:zlib";
import { cpuDevice, gitCommit } from "./lib/run-info.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..");
const cli = join(repo, "packages/cli/dist/bin.js");
const { values } = parseArgs({
  options: {
    concurrent: { type: "string", default: "200" },
    queue: { type: "string", default: "50" },
    out: { type: "string", default: join(here, "results") },
    only: { type: "string" },
  },
});
const commit = gitCommit();
const { Store } = await import(join(repo, "packages/server/dist/index.js"));
const { crc32 } = await import(join(repo, "packages/server/dist/png.js"));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A job of some seconds on the demo model: 81 frames, 100 steps (serve's --max-steps).
const LONG_JOB = { prompt: "red ball going right", frames: 81, steps: 100, seed: 1 };
const results = {};

// ---- plumbing ----

function req(url, path, o = {}) {
  const u = new URL(path, url);
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: o.method ?? "GET",
        headers: o.headers,
      },
      (res) => {
        const chunks = [];
        res.on("data", (d) => chunks.push(d));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body = text;
          if ((res.headers["content-type"] ?? "").includes("json") && text) body = JSON.parse(text);
          resolve({ status: res.statusCode, headers: res.headers, body });
        });
      },
    );
    r.on("error", reject);
    r.end(o.body);
  });
}
const post = (url, json, headers = {}) =>
  req(url, "/v1/videos", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(json),
  });
const job = async (url, id) => (await req(url, `/v1/videos/${id}`)).body;

async function waitFor(what, check, timeoutMs = 60_000, everyMs = 50) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
const waitStatus = (url, id, status, timeoutMs) =>
  waitFor(
    `${id} to be ${status}`,
    async () => ((await job(url, id)).status === status ? job(url, id) : false),
    timeoutMs,
  );

/** `tessera serve` in its own process; resolves once it listens. */
function serve(dataDir, args = [], o = {}) {
  const argv = [cli, "serve", "--data", dataDir, "--port", String(o.port ?? 0), "--rate-limit", "0", ...args];
  const child = o.cgroup
    ? spawn("sh", ["-c", `echo $$ > ${o.cgroup}/cgroup.procs && exec "$0" "$@"`, process.execPath, ...argv])
    : spawn(process.execPath, argv);
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  const listening = new Promise((resolve, reject) => {
    const t = setInterval(() => {
      const m = / on (http:\/\/\S+) \(data:/.exec(out);
      if (m) {
        clearInterval(t);
        resolve(m[1]);
      }
    }, 20);
    exited.then((e) => {
      clearInterval(t);
      reject(
        Object.assign(new Error(`serve exited (${e.code ?? e.signal}): ${out.trim()}`), { exit: e, out }),
      );
    });
  });
  // Callers that expect it to exit (a second server on a folder in use) never wait for it to listen.
  listening.catch(() => {});
  return { child, exited, listening, output: () => out };
}

async function stop(s, signal = "SIGTERM") {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill(signal);
  return s.exited;
}

function tempData(prefix = "tessera-faults-") {
  return mkdtempSync(join(tmpdir(), prefix));
}

function rssPeakMb(pid) {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  return {
    rss: Math.round(Number(/VmRSS:\s+(\d+)/.exec(s)[1]) / 1024),
    peak: Math.round(Number(/VmHWM:\s+(\d+)/.exec(s)[1]) / 1024),
  };
}

const canMount = (() => {
  const d = tempData("tessera-mount-probe-");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", d], { stdio: "pipe" });
    execFileSync("umount", [d], { stdio: "pipe" });
    return null;
  } catch (e) {
    return `cannot mount here (${
      String(e.stderr ?? e.message)
        .trim()
        .split("\n")[0]
    })`;
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
})();

async function fillDisk(dir) {
  const file = join(dir, "filler");
  const fh = await open(file, "w");
  for (const size of [1 << 20, 1 << 12, 1]) {
    const buf = Buffer.alloc(size);
    for (;;) {
      try {
        await fh.write(buf);
      } catch (e) {
        if (e.code !== "ENOSPC") throw e;
        break;
      }
    }
  }
  await fh.close();
  return () => rmSync(file, { force: true });
}

// ---- 1. load ----

async function loadRun() {
  const n = Number(values.concurrent);
  const data = tempData();
  const s = serve(data, ["--max-queue", values.queue]);
  const url = await s.listening;
  try {
    const t0 = Date.now();
    const answers = await Promise.all(
      Array.from({ length: n }, (_, i) => post(url, { prompt: "red ball going right", steps: 1, seed: i })),
    );
    const burstMs = Date.now() - t0;
    const accepted = answers.filter((a) => a.status === 202).map((a) => a.body.id);
    const refused = answers.filter((a) => a.status === 429);
    const retryAfter = refused.map((a) => Number(a.headers["retry-after"]));
    // When does a slot really free? Submit every 100 ms until one is taken.
    let seed = 10_000;
    const untilTaken = async () => {
      const t = Date.now();
      for (;;) {
        const a = await post(url, { prompt: "red ball going right", steps: 1, seed: seed++ });
        if (a.status === 202) {
          accepted.push(a.body.id);
          return (Date.now() - t) / 1000;
        }
        await sleep(100);
      }
    };
    const cold = { retryAfter: Math.max(...retryAfter), freedAfter: await untilTaken() };
    // Warm: once jobs have finished the server knows how long one takes. Fill the queue again.
    await waitFor("ten jobs done", async () => (await req(url, "/healthz")).body.queued <= 40, 300_000, 200);
    let refusal = null;
    while (!refusal) {
      const a = await post(url, { prompt: "red ball going right", steps: 1, seed: seed++ });
      if (a.status === 202) accepted.push(a.body.id);
      else refusal = a;
    }
    const warm = { retryAfter: Number(refusal.headers["retry-after"]), freedAfter: await untilTaken() };
    await waitFor(
      "every accepted job to finish",
      async () => {
        const h = (await req(url, "/healthz")).body;
        return h.queued === 0 && h.worker === "idle";
      },
      600_000,
      500,
    );
    const listed = [];
    for (let after = null; ; ) {
      const page = (await req(url, `/v1/videos?limit=100&order=asc${after ? `&after=${after}` : ""}`)).body;
      listed.push(...page.data);
      if (!page.has_more) break;
      after = page.last_id;
    }
    const byId = new Map(listed.map((j) => [j.id, j]));
    const lost = accepted.filter((id) => byId.get(id)?.status !== "completed").length;
    const acceptedSet = new Set(accepted);
    const unexpected = listed.filter((j) => !acceptedSet.has(j.id)).length;
    const ranTwice = listed.filter((j) => j.attempts !== 1).length;
    return {
      submitted: n,
      accepted: answers.filter((a) => a.status === 202).length,
      refused429: refused.length,
      other: answers.filter((a) => a.status !== 202 && a.status !== 429).map((a) => a.status),
      burstSeconds: burstMs / 1000,
      retryAfterSeconds: { min: Math.min(...retryAfter), max: Math.max(...retryAfter) },
      cold,
      warm,
      acceptedInAll: accepted.length,
      completed: listed.filter((j) => j.status === "completed").length,
      lost,
      duplicated: (listed.length !== byId.size ? listed.length - byId.size : 0) + unexpected + ranTwice,
    };
  } finally {
    await stop(s);
    rmSync(data, { recursive: true, force: true });
  }
}

// ---- 2. two servers, one folder ----

async function twoServers() {
  const data = tempData();
  const a = serve(data);
  const url = await a.listening;
  try {
    const long = await post(url, LONG_JOB);
    await waitFor("the run", async () => (await job(url, long.body.id)).step >= 2);
    const port = new URL(url).port;
    const second = [];
    for (const [label, o] of [
      ["another port", {}],
      ["the same port", { port }],
    ]) {
      const t0 = Date.now();
      const b = serve(data, [], o);
      const e = await b.exited;
      second.push({
        label,
        exit: e.code,
        seconds: (Date.now() - t0) / 1000,
        said:
          b
            .output()
            .split("\n")
            .find((l) => /in use/.test(l)) ?? b.output().trim().split("\n").at(-1),
      });
    }
    const done = await waitStatus(url, long.body.id, "completed", 120_000);
    return { second, firstJob: { status: done.status, attempts: done.attempts } };
  } finally {
    await stop(a);
    rmSync(data, { recursive: true, force: true });
  }
}

// ---- 3. full disk ----

async function fullDisk() {
  if (canMount) return { skipped: canMount };
  const mnt = tempData("tessera-tmpfs-");
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt]);
  const s = serve(join(mnt, "data"));
  try {
    const url = await s.listening;
    const a = await post(url, { prompt: "red ball going right", steps: 80, seed: 1 });
    const b = await post(url, { prompt: "blue square going left", steps: 1, seed: 2 });
    await waitFor("the run", async () => (await job(url, a.body.id)).step >= 2);
    const free = await fillDisk(mnt);
    const whileFull = await post(url, { prompt: "while full", steps: 1 });
    await waitFor("the run to end", async () => (await req(url, "/healthz")).body.worker === "idle", 60_000);
    const health = await req(url, "/healthz");
    const bWhileFull = (await job(url, b.body.id)).status;
    free();
    const bDone = await waitStatus(url, b.body.id, "completed", 60_000);
    const aEnd = await waitFor("a's end", async () => {
      const j = await job(url, a.body.id);
      return j.status === "failed" || j.status === "completed" ? j : false;
    });
    const after = await post(url, { prompt: "after", steps: 1, seed: 3 });
    const afterDone = await waitStatus(url, after.body.id, "completed", 60_000);
    return {
      submissionWhileFull: `${whileFull.status} ${whileFull.body.error?.code}`,
      healthzWhileFull: health.status,
      runningJob: `${aEnd.status} (${aEnd.error?.code}: ${aEnd.error?.message})`,
      queuedJobWhileFull: bWhileFull,
      queuedJobAfterSpaceFreed: bDone.status,
      submissionAfter: afterDone.status,
      serverAlive: s.child.exitCode === null,
    };
  } finally {
    await stop(s);
    execFileSync("umount", ["-l", mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
}

// ---- 4. outputs folder not writable ----

async function unwritableOutputs() {
  if (canMount) return { skipped: canMount };
  const data = tempData();
  const s = serve(data);
  try {
    const url = await s.listening;
    const jobs = join(data, "jobs");
    execFileSync("mount", ["--bind", jobs, jobs]);
    execFileSync("mount", ["-o", "remount,bind,ro", jobs]);
    let failed;
    const t0 = Date.now();
    try {
      const c = await post(url, { prompt: "red ball going right", steps: 4 });
      failed = await waitStatus(url, c.body.id, "failed", 30_000);
    } finally {
      execFileSync("umount", [jobs]);
    }
    const failedAfterS = (Date.now() - t0) / 1000;
    const health = (await req(url, "/healthz")).body;
    const next = await post(url, { prompt: "red ball going right", steps: 4 });
    const nextDone = await waitStatus(url, next.body.id, "completed", 60_000);
    return {
      job: `${failed.status} after ${failedAfterS.toFixed(1)} s (${failed.error.code}: ${failed.error.message})`,
      healthz: `${health.status}, worker ${health.worker}`,
      nextJobOnceWritable: nextDone.status,
    };
  } finally {
    await stop(s);
    rmSync(data, { recursive: true, force: true });
  }
}

// ---- 5. rolling SIGTERM restarts ----

async function rollingRestarts(restarts = 4) {
  const data = tempData();
  let id = null;
  const drains = [];
  try {
    for (let i = 0; i < restarts; i++) {
      const s = serve(data, ["--drain-seconds", "1"]);
      const url = await s.listening;
      if (!id) id = (await post(url, LONG_JOB)).body.id;
      await waitFor("the run", async () => (await job(url, id)).step >= 3, 60_000);
      s.child.kill("SIGTERM");
      await sleep(200);
      const health = await req(url, "/healthz").catch((e) => ({ status: e.code }));
      const submit = await post(url, { prompt: "during the drain" }).catch((e) => ({ status: e.code }));
      const e = await s.exited;
      drains.push({ healthz: health.status, submission: submit.status, exit: e.code });
    }
    const store = new Store(join(data, "tessera.db"));
    const before = store.getAnyJob(id);
    store.close();
    const s = serve(data);
    const url = await s.listening;
    const done = await waitStatus(url, id, "completed", 300_000);
    await stop(s);
    return {
      restarts,
      drains,
      beforeLastStart: {
        status: before.status,
        attempts: before.attempts,
        interruptions: before.interruptions,
      },
      final: { status: done.status, attempts: done.attempts },
    };
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
}

// ---- 6. oversized requests in a 4 GiB container ----

function memoryCgroup(bytes) {
  const line = readFileSync("/proc/self/cgroup", "utf8")
    .split("\n")
    .find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  const v1 = "/sys/fs/cgroup/memory";
  if (line && existsSync(v1)) {
    const dir = join(v1, line.split(":").slice(2).join(":"), `tessera-faults-${process.pid}`);
    mkdirSync(dir);
    writeFileSync(join(dir, "memory.limit_in_bytes"), String(bytes));
    return dir;
  }
  const v2 = "/sys/fs/cgroup";
  const own = readFileSync("/proc/self/cgroup", "utf8").match(/^0::(.*)$/m)?.[1];
  if (own !== undefined && existsSync(join(v2, "cgroup.controllers"))) {
    const dir = join(v2, own, `tessera-faults-${process.pid}`);
    mkdirSync(dir);
    writeFileSync(join(dir, "memory.max"), String(bytes));
    return dir;
  }
  throw new Error("no writable memory cgroup");
}

async function blankPng(w, h) {
  const z = createDeflate({ level: 9 });
  const out = [];
  z.on("data", (d) => out.push(d));
  const done = new Promise((r) => z.on("end", r));
  const rows = Buffer.alloc((1 + w * 3) * 100);
  for (let y = 0; y < h; y += 100)
    if (!z.write(rows.subarray(0, Math.min(100, h - y) * (1 + w * 3))))
      await new Promise((r) => z.once("drain", r));
  z.end();
  await done;
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", Buffer.concat(out)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function multipart(fields, file) {
  const boundary = `----tessera${Date.now()}`;
  const parts = [];
  for (const [k, v] of Object.entries(fields))
    parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  parts.push(
    Buffer.from(
      `--${boundary}\r\ncontent-disposition: form-data; name="image"; filename="x.png"\r\ncontent-type: image/png\r\n\r\n`,
    ),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  );
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` };
}

async function oversized() {
  let cgroup = null;
  let why = null;
  try {
    cgroup = memoryCgroup(4 * 2 ** 30);
  } catch (e) {
    why = `no 4 GiB cgroup (${e.message}): run without a container limit, --memory-budget 4GiB`;
  }
  const data = tempData();
  const s = serve(data, cgroup ? [] : ["--memory-budget", "4GiB"], cgroup ? { cgroup } : {});
  try {
    const url = await s.listening;
    const budgetLine = s
      .output()
      .split("\n")
      .find((l) => /are refused/.test(l));
    const pid = s.child.pid;
    const start = rssPeakMb(pid);
    const long = await post(url, { prompt: "red ball going right", frames: 161, steps: 1 });
    const longDone = long.status === 202 ? await waitStatus(url, long.body.id, "completed", 300_000) : null;
    const afterLong = rssPeakMb(pid);
    const huge = await post(url, { prompt: "red ball going right", size: "512x512", frames: 161, steps: 1 });
    const png = await blankPng(16000, 16000);
    const before = rssPeakMb(pid);
    const m = multipart({ prompt: "it comes alive" }, png);
    const big = await req(url, "/v1/videos", {
      method: "POST",
      headers: { "content-type": m.type },
      body: m.body,
    });
    const afterPng = rssPeakMb(pid);
    const g = multipart(
      { prompt: "it comes alive" },
      Buffer.concat([png.subarray(0, 8), Buffer.alloc(4096, 7)]),
    );
    const garbage = await req(url, "/v1/videos", {
      method: "POST",
      headers: { "content-type": g.type },
      body: g.body,
    });
    return {
      container: cgroup
        ? "a cgroup with memory limit 4 GiB (the server's default budget comes from it)"
        : why,
      budget: budgetLine?.replace(/^tessera: /, ""),
      frames161: `${long.status}${longDone ? `, ${longDone.status} in ${(longDone.timings.run_ms / 1000).toFixed(1)} s` : ` ${long.body.error?.message}`}; server RSS ${start.rss} MB → peak ${afterLong.peak} MB`,
      size512frames161: `${huge.status} ${huge.body.error?.code}: ${huge.body.error?.message}`,
      png16000: `${big.status}: ${big.body.error?.message} (${(png.length / 1024).toFixed(0)} KiB; RSS ${before.rss} → ${afterPng.rss} MB)`,
      pngGarbage: `${garbage.status}: ${garbage.body.error?.message}`,
      serverAlive: s.child.exitCode === null,
    };
  } finally {
    await stop(s);
    rmSync(data, { recursive: true, force: true });
    if (cgroup) rmSync(cgroup, { recursive: true, force: true });
  }
}

// ---- 7. cross-origin and bad Host ----

async function origins() {
  const data = tempData();
  const s = serve(data);
  try {
    const url = await s.listening;
    const host = new URL(url).host;
    const body = { prompt: "red ball going right", steps: 1 };
    const rows = [];
    const add = async (what, p) => {
      const r = await p;
      rows.push({
        what,
        status: r.status,
        code: r.body?.error?.code ?? (r.status === 202 ? "accepted" : ""),
      });
    };
    await add(
      "GET /v1/videos, Host: attacker.example",
      req(url, "/v1/videos", { headers: { host: "attacker.example" } }),
    );
    await add(
      "DELETE a job, Host: attacker.example",
      req(url, "/v1/videos/11111111-2222-4333-8444-555555555555", {
        method: "DELETE",
        headers: { host: "attacker.example" },
      }),
    );
    await add(
      "GET /healthz, Host: attacker.example",
      req(url, "/healthz", { headers: { host: "attacker.example" } }),
    );
    await add(
      "POST, Origin: http://attacker.example (form post / no-cors fetch)",
      post(url, body, { origin: "http://attacker.example" }),
    );
    await add(
      "POST, Sec-Fetch-Site: cross-site, no Origin",
      post(url, body, { "sec-fetch-site": "cross-site" }),
    );
    await add("POST, Origin: null", post(url, body, { origin: "null" }));
    await add("POST as curl (no Origin)", post(url, body));
    await add(
      `POST from the page (Origin: http://${host})`,
      post(url, body, { origin: `http://${host}`, "sec-fetch-site": "same-origin" }),
    );
    return rows;
  } finally {
    await stop(s);
    rmSync(data, { recursive: true, force: true });
  }
}

// ---- run, write ----

const runs = [
  ["load", loadRun],
  ["twoServers", twoServers],
  ["fullDisk", fullDisk],
  ["unwritableOutputs", unwritableOutputs],
  ["rollingRestarts", rollingRestarts],
  ["oversized", oversized],
  ["origins", origins],
];
const only = values.only?.split(",");
for (const [name, run] of runs) {
  if (only && !only.includes(name)) continue;
  const t0 = Date.now();
  process.stderr.write(`server-faults: ${name}…\n`);
  try {
    results[name] = await run();
  } catch (e) {
    results[name] = { error: e.message };
  }
  process.stderr.write(
    `server-faults: ${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(results[name])}\n`,
  );
}

const date = new Date().toISOString().slice(0, 10);
const device = cpuDevice();
mkdirSync(values.out, { recursive: true });
writeFileSync(
  join(values.out, "server-faults-cpu.json"),
  `${JSON.stringify({ date, device, commit, results }, null, 2)}\n`,
);

const md = [];
const r = results;
md.push(`# tessera serve under load and faults (${date}, ${device}, commit ${commit})`, "");
md.push(
  "The bundled demo model on the CPU, each server a `tessera serve` process (`--rate-limit 0`). " +
    "Produced by `node benchmarks/server-faults.mjs` (as root: tmpfs, bind mounts and a memory cgroup).",
  "",
);
const NOT_RUN = { error: "not run (--only)" };
const L = r.load ?? NOT_RUN;
md.push(`## Load: ${values.concurrent} concurrent submissions over a ${values.queue}-slot queue`, "");
if (L.error) md.push(`failed: ${L.error}`, "");
else {
  md.push("| submitted at once | accepted | 429 | other | lost | duplicated |");
  md.push("| --- | --- | --- | --- | --- | --- |");
  md.push(
    `| ${L.submitted} | ${L.accepted} | ${L.refused429} | ${L.other.length} | ${L.lost} | ${L.duplicated} |`,
    "",
  );
  md.push(
    `Lost and duplicated count every job accepted in the run (${L.acceptedInAll}, the burst's and those taken later as slots freed; ` +
      `${L.completed} completed, each run once). The burst took ${L.burstSeconds.toFixed(2)} s.`,
    "",
    "| Retry-After on a full queue | given | a slot really freed after |",
    "| --- | --- | --- |",
    `| cold (the first job still running, no run time known yet) | ${L.cold.retryAfter} s | ${L.cold.freedAfter.toFixed(1)} s |`,
    `| warm (run times known) | ${L.warm.retryAfter} s | ${L.warm.freedAfter.toFixed(1)} s |`,
    "",
  );
}
md.push("## Faults", "");
const line = (label, v) =>
  md.push(`- **${label}**: ${typeof v === "string" ? v.replace(/\s*\n\s*/g, " / ") : JSON.stringify(v)}`);
const T = r.twoServers ?? NOT_RUN;
if (T.error) line("Two servers on one data folder", `failed: ${T.error}`);
else {
  for (const s of T.second)
    line(
      `A second server on the folder in use (${s.label})`,
      `exit ${s.exit} after ${s.seconds.toFixed(1)} s: "${s.said.replace(/^tessera: /, "")}"`,
    );
  line("The first server's running job", `${T.firstJob.status}, attempts ${T.firstJob.attempts}`);
}
const F = r.fullDisk ?? NOT_RUN;
if (F.skipped || F.error) line("Full disk", F.skipped ? `skipped: ${F.skipped}` : `failed: ${F.error}`);
else {
  line("Full disk (24 MB tmpfs filled while a job runs): a submission", F.submissionWhileFull);
  line("… /healthz", F.healthzWhileFull);
  line("… the running job", F.runningJob);
  line(
    "… the job queued behind it",
    `${F.queuedJobWhileFull} while full, ${F.queuedJobAfterSpaceFreed} once space was freed`,
  );
  line("… a submission after", F.submissionAfter);
  line("… server process alive throughout", F.serverAlive);
}
const U = r.unwritableOutputs ?? NOT_RUN;
if (U.skipped || U.error)
  line("Unwritable outputs folder", U.skipped ? `skipped: ${U.skipped}` : `failed: ${U.error}`);
else {
  line("Outputs folder read-only (bind mount): the job", U.job);
  line("… /healthz", U.healthz);
  line("… the next job once writable", U.nextJobOnceWritable);
}
const R = r.rollingRestarts ?? NOT_RUN;
if (R.error) line("Rolling SIGTERM restarts", `failed: ${R.error}`);
else {
  line(
    `Rolling SIGTERM restarts (${R.restarts}, --drain-seconds 1, a 100-step job of 81 frames)`,
    `during each drain /healthz ${[...new Set(R.drains.map((d) => d.healthz))].join("/")} and submissions ${[...new Set(R.drains.map((d) => d.submission))].join("/")}, exit ${[...new Set(R.drains.map((d) => d.exit))].join("/")}; before the last start the job was ${R.beforeLastStart.status} with ${R.beforeLastStart.attempts} attempts and ${R.beforeLastStart.interruptions} interruptions; it ended ${R.final.status} (${R.final.attempts} attempts)`,
  );
}
const O = r.oversized ?? NOT_RUN;
if (O.error) line("Oversized requests", `failed: ${O.error}`);
else {
  line("Container", O.container);
  line("Budget", O.budget);
  line('`{"frames":161,"steps":1}`', O.frames161);
  line('`{"size":"512x512","frames":161,"steps":1}`', O.size512frames161);
  line("A 16000x16000 PNG", O.png16000);
  line("A PNG signature with garbage after it", O.pngGarbage);
  line("Server process alive after all of it", O.serverAlive);
}
md.push("", "## Cross-origin and bad-Host requests", "");
if (!r.origins || r.origins.error) md.push(`failed: ${(r.origins ?? NOT_RUN).error}`);
else {
  md.push("| request | status | code |", "| --- | --- | --- |");
  for (const o of r.origins) md.push(`| ${o.what} | ${o.status} | ${o.code} |`);
}
writeFileSync(join(values.out, "server-faults-cpu.md"), `${md.join("\n")}\n`);
console.log(md.join("\n"));
