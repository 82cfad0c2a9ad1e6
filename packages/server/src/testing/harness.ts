// Helpers shared by the server's tests (no test-runner imports, so it builds like the rest).
import { mkdtemp, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type ServerOptions, type TesseraServer } from "../app.js";
import { type FakeGeneratorOptions, FakeVideoGenerator } from "./fake-generator.js";

export interface Harness {
  srv: TesseraServer;
  url: string;
  gen: FakeVideoGenerator;
  dataDir: string;
  /** Drains the server (grace 0 unless given) and removes its data folder. */
  close(o?: { keepData?: boolean; graceMs?: number }): Promise<void>;
}

export async function tempDir(prefix = "tessera-server-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function startFake(
  o: Partial<Omit<ServerOptions, "generator">> & {
    fake?: FakeGeneratorOptions;
    gen?: FakeVideoGenerator;
  } = {},
): Promise<Harness> {
  const dataDir = o.dataDir ?? (await tempDir());
  const gen = o.gen ?? new FakeVideoGenerator(o.fake);
  const srv = await createServer({ rateLimit: false, ...o, dataDir, generator: gen, port: 0 });
  const url = await srv.listen();
  return {
    srv,
    url,
    gen,
    dataDir,
    async close(c = {}) {
      await srv.close({ graceMs: c.graceMs ?? 0 });
      if (!c.keepData) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** fetch + JSON, with an optional bearer key. */
export async function api<T = any>(
  url: string,
  path: string,
  init: {
    method?: string;
    json?: unknown;
    body?: RequestInit["body"];
    key?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.key) headers.authorization = `Bearer ${init.key}`;
  let body = init.body;
  if (init.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(init.json);
  }
  const r = await fetch(`${url}${path}`, {
    method: init.method ?? (body ? "POST" : "GET"),
    headers,
    body: body ?? null,
  });
  const text = await r.text();
  let parsed: unknown = text;
  if ((r.headers.get("content-type") ?? "").includes("json") && text) parsed = JSON.parse(text);
  return { status: r.status, headers: r.headers, body: parsed as T };
}

/** Polls until `check` returns a value (not undefined/false), or throws after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  everyMs = 10,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`,
      );
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function waitForStatus(
  url: string,
  id: string,
  status: string,
  o: { key?: string; timeoutMs?: number } = {},
) {
  return waitFor(
    `video ${id} to be ${status}`,
    async () => {
      const r = await api(url, `/v1/videos/${id}`, o.key ? { key: o.key } : {});
      return r.body?.status === status ? r.body : undefined;
    },
    o.timeoutMs ?? 10_000,
  );
}

/** Reads a Server-Sent Events stream to its end: [{event, data}]. */
export async function readSse(url: string, path: string, key?: string, timeoutMs = 10_000) {
  const r = await fetch(`${url}${path}`, {
    headers: key ? { authorization: `Bearer ${key}` } : {},
    signal: AbortSignal.timeout(timeoutMs),
  });
  const events: { event: string; data: any }[] = [];
  if (r.status !== 200) return { status: r.status, contentType: r.headers.get("content-type"), events };
  const text = await r.text();
  for (const block of text.split("\n\n")) {
    const lines = block.split("\n");
    const ev = lines.find((l) => l.startsWith("event: "))?.slice(7);
    const data = lines.find((l) => l.startsWith("data: "))?.slice(6);
    if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
  }
  return { status: r.status, contentType: r.headers.get("content-type"), events };
}

/** Parses the fake generator's Y4M: header fields and frame count. */
export function parseY4m(buf: Buffer): { width: number; height: number; frames: number } {
  const nl = buf.indexOf(0x0a);
  const header = buf.subarray(0, nl).toString("latin1");
  if (!header.startsWith("YUV4MPEG2 ")) throw new Error(`not a Y4M file: ${header.slice(0, 20)}`);
  const width = Number(/ W(\d+)/.exec(header)?.[1]);
  const height = Number(/ H(\d+)/.exec(header)?.[1]);
  const frameBytes = 6 + width * height * 3;
  const rest = buf.length - (nl + 1);
  if (rest % frameBytes !== 0)
    throw new Error(`Y4M body of ${rest} bytes is not whole frames of ${frameBytes}`);
  for (let off = nl + 1; off < buf.length; off += frameBytes)
    if (buf.subarray(off, off + 6).toString("latin1") !== "FRAME\n")
      throw new Error(`no FRAME marker at ${off}`);
  return { width, height, frames: rest / frameBytes };
}

/**
 * A request through node:http, which (unlike fetch) sends the Host, Origin and
 * Sec-Fetch-* headers it is given, as a browser or a DNS-rebinding page would.
 */
export function rawRequest(
  url: string,
  path: string,
  o: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<ApiResponse> {
  const u = new URL(path, url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method: o.method ?? "GET",
        headers: o.headers,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") headers.set(k, v);
          let body: unknown = text;
          if ((res.headers["content-type"] ?? "").includes("json") && text) body = JSON.parse(text);
          resolve({ status: res.statusCode ?? 0, headers, body });
        });
      },
    );
    req.on("error", reject);
    req.end(o.body);
  });
}

/**
 * Under CI (CI=true, as .ci/run sets it) a test whose dependency is missing (redis-server,
 * Chromium) fails instead of skipping: a fresh machine that skips them has not run them.
 */
export const UNDER_CI = /^(1|true)$/i.test(process.env.CI ?? "");
