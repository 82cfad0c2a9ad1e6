import { describe, expect, it } from "vitest";
import { runMain as run } from "./testing/run-main.js";

describe("tessera CLI", () => {
  it("prints help", async () => {
    const r = await run("help");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/tessera forward/);
  });

  it("lists devices, the CPU first", async () => {
    const r = await run("devices", "--json");
    expect(r.code).toBe(0);
    const body = JSON.parse(r.out) as { devices: { name: string }[] };
    expect(body.devices[0]?.name).toBe("cpu");
  });

  it("runs a forward pass of the tiny Wan transformer on the CPU", async () => {
    const r = await run("forward", "--json", "--frames", "5", "--size", "32x48");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as { shape: number[]; finite: boolean; tokens: number };
    expect(report.shape).toEqual([1, 2, 6, 4, 16]);
    expect(report.finite).toBe(true);
    expect(report.tokens).toBe(2 * 3 * 2);
  });

  it("rejects bad flags with exit code 2 and names the flag", async () => {
    for (const [args, pattern] of [
      [["forward", "--size", "100"], /--size/],
      [["forward", "--size", "40x40"], /multiple of 16/],
      [["forward", "--frames", "-3"], /--frames/],
      [["forward", "--config", "sora"], /--config/],
      [["forward", "--dtype", "bf16"], /--dtype/],
      [["forward", "--bogus"], /bogus/],
      [["frobnicate"], /unknown command/],
    ] as const) {
      const r = await run(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toMatch(pattern);
    }
  });

  it("checks --queue for serve and worker before loading anything", async () => {
    for (const [args, pattern] of [
      [["worker"], /needs --queue/],
      [["worker", "--queue", "http://127.0.0.1:6379"], /--queue must be a redis:\/\//],
      [["worker", "--queue", "127.0.0.1:6379"], /--queue must be a redis:\/\//],
      [["serve", "--queue", "nonsense"], /--queue must be a redis:\/\//],
      [["worker", "--queue", "redis://127.0.0.1:1", "--lock-seconds", "1"], /--lock-seconds/],
    ] as const) {
      const r = await run(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toMatch(pattern);
    }
    expect((await run("help")).out).toMatch(/tessera worker --queue/);
  });

  it("explains an unavailable device", async () => {
    const r = await run("forward", "--device", "cuda:7");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cuda:7/);
  });
});
