import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer } from "./index.js";

let url = "";
let close: () => Promise<void>;

beforeAll(async () => {
  const s = await startServer({ port: 0 });
  url = s.url;
  close = () => new Promise((r) => s.server.close(() => r()));
});
afterAll(() => close());

describe("server", () => {
  it("answers /healthz", async () => {
    const r = await fetch(`${url}/healthz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ok" });
  });

  it("lists devices with the CPU first", async () => {
    const body = (await (await fetch(`${url}/v1/devices`)).json()) as {
      data: { name: string }[];
      cuda: { available: boolean };
    };
    expect(body.data[0]?.name).toBe("cpu");
    expect(typeof body.cuda.available).toBe("boolean");
  });

  it("gives clear 404 and 405 errors", async () => {
    const r404 = await fetch(`${url}/../../etc/passwd`);
    expect(r404.status).toBe(404);
    const r405 = await fetch(`${url}/healthz`, { method: "POST" });
    expect(r405.status).toBe(405);
    expect(((await r405.json()) as { error: { message: string } }).error.message).toMatch(/POST/);
  });
});
