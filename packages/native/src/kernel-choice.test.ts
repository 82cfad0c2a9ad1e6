// The CUDA backend's kernel choice (native/cuda/runtime/kernel_choice.h) is plain host code:
// this builds it with a small driver that prints what it read, and runs the driver under
// different TESSERA_CUDA_* environments. No GPU or CUDA toolkit needed, only the C++ compiler
// the addon is built with.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const nativeDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "native");
const cxx = process.env.CXX ?? "g++";
const haveCxx = spawnSync(cxx, ["--version"]).status === 0;

let dir = "";
let exe = "";

function choice(env: Record<string, string>): { fields: Record<string, number>; stderr: string } {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("TESSERA_CUDA_")),
  );
  const r = spawnSync(exe, [], { env: { ...clean, ...env }, encoding: "utf8" });
  expect(r.status).toBe(0);
  const fields: Record<string, number> = {};
  for (const line of r.stdout.trim().split("\n")) {
    const [k, v] = line.split("=");
    fields[k as string] = Number(v);
  }
  return { fields, stderr: r.stderr };
}

describe.skipIf(!haveCxx)("CUDA kernel choice from the environment", () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "kernel-choice-"));
    exe = join(dir, "kernel_choice_check");
    execFileSync(cxx, [
      "-std=c++17",
      "-O0",
      "-I",
      join(nativeDir, "include"),
      "-I",
      nativeDir,
      join(nativeDir, "cuda", "runtime", "kernel_choice.cc"),
      join(nativeDir, "cuda", "runtime", "kernel_choice_check.cpp"),
      "-o",
      exe,
    ]);
  }, 60_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("takes every default path with no switch set", () => {
    const { fields, stderr } = choice({});
    expect(fields).toEqual({
      attn_mma_only: 0,
      attn_trace: 0,
      cublaslt: 1,
      gemm_trace: 0,
      conv_no_wgmma: 0,
      conv_tile_n: 0,
      conv_pipeline: 0,
      conv_ws_tma: 1,
      conv_trace: 0,
    });
    expect(stderr).toBe("");
  });

  it("reads each switch's values", () => {
    const { fields, stderr } = choice({
      TESSERA_CUDA_ATTN: "mma",
      TESSERA_CUDA_ATTN_TRACE: "1",
      TESSERA_CUDA_NO_CUBLASLT: "1",
      TESSERA_CUDA_GEMM_TRACE: "1",
      TESSERA_CUDA_CONV: "igemm",
      TESSERA_CUDA_CONV_TILE: "128x96",
      TESSERA_CUDA_CONV_WGMMA: "ws",
      TESSERA_CUDA_CONV_WS_TMA: "0",
      TESSERA_CUDA_CONV_TRACE: "1",
    });
    expect(fields).toEqual({
      attn_mma_only: 1,
      attn_trace: 1,
      cublaslt: 0,
      gemm_trace: 1,
      conv_no_wgmma: 1,
      conv_tile_n: 96,
      conv_pipeline: 3, // ConvPipeline::Ws
      conv_ws_tma: 0,
      conv_trace: 1,
    });
    expect(stderr).toBe("");
  });

  it("keeps the default for wgmma and flags set to 0 or empty", () => {
    const { fields } = choice({
      TESSERA_CUDA_ATTN: "wgmma",
      TESSERA_CUDA_ATTN_TRACE: "0",
      TESSERA_CUDA_NO_CUBLASLT: "",
      TESSERA_CUDA_CONV_WS_TMA: "1",
    });
    expect(fields.attn_mma_only).toBe(0);
    expect(fields.attn_trace).toBe(0);
    expect(fields.cublaslt).toBe(1);
    expect(fields.conv_ws_tma).toBe(1);
  });

  it("reports a value outside a switch's list and ignores it, removed values included", () => {
    const { fields, stderr } = choice({
      TESSERA_CUDA_CONV: "wmma",
      TESSERA_CUDA_CONV_TILE: "128x100",
      TESSERA_CUDA_ATTN: "fast",
    });
    expect(fields.conv_no_wgmma).toBe(0);
    expect(fields.conv_tile_n).toBe(0);
    expect(fields.attn_mma_only).toBe(0);
    expect(stderr).toContain("TESSERA_CUDA_CONV=wmma is not one of igemm; ignored");
    expect(stderr).toContain("TESSERA_CUDA_CONV_TILE=128x100 is not one of 128x192, 128x128, 128x96, 128x64");
    expect(stderr).toContain("TESSERA_CUDA_ATTN=fast is not one of mma, wgmma");
  });

  it("reads nothing from the deleted attention schedule and warpgroup switches", () => {
    const defaults = choice({});
    const { fields, stderr } = choice({
      TESSERA_CUDA_ATTN_WGMMA: "basic",
      TESSERA_CUDA_ATTN_WGMMA_WG: "2",
    });
    expect(fields).toEqual(defaults.fields);
    expect(stderr).toBe("");
  });
});
