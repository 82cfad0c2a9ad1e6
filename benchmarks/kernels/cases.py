#!/usr/bin/env python3
"""The kernel benchmark's cases, shared by both sides: torch_bench.py (PyTorch baselines,
reference outputs) and bench.mjs (our kernels through Node) read the manifest this writes.

Every input is `randn(shape, seed)` from Tessera's counter-based generator
(native/include/tessera/rng.h): bench.mjs draws it with the native `randn` op on the GPU,
torch_bench.py regenerates the very same values with philox.py, so both sides time and
check the same data and no inputs cross between the processes. Only a row-sampled copy of
each PyTorch output (the reference) goes to a file that bench.mjs compares against.

  python3 cases.py --out manifest.json [--small] [--dtype f32|bf16] [--ref-dir DIR]

No torch needed. --small: tiny shapes in f32 for the CPU smoke test.
"""
import argparse
import json
import math
import os

# Nominal H100 SXM ceilings, used only to pick each case's unit (the bound that dominates);
# the fractions in the results use the ceilings measured in the same call.
NOMINAL_TFLOPS = 800.0
NOMINAL_GBS = 3000.0
# A reference holds at most this many sampled output values (float32 on disk).
REF_MAX_VALUES = 2_000_000


def _is_prime(n):
    if n < 2:
        return False
    for p in range(2, int(math.isqrt(n)) + 1):
        if n % p == 0:
            return False
    return True


def ref_stride(rows, row_len):
    """Every stride-th output row is compared; a prime stride so the sample does not alias with the grid."""
    need = math.ceil(rows * row_len / REF_MAX_VALUES)
    if need <= 1:
        return 1
    s = need
    while not _is_prime(s):
        s += 1
    return s


def build(small=False, dtype=None):
    dtype = dtype or ("f32" if small else "bf16")
    esize = 4 if dtype == "f32" else 2
    cases = []
    seed = [1_000]

    def inp(name, shape):
        seed[0] += 1
        return {"name": name, "shape": list(shape), "seed": seed[0]}

    def add(name, tag, kind, params, inputs, out_shape, row_len, flops, nbytes, shape_str, unit=None):
        rows = math.prod(out_shape) // row_len
        if unit is None:
            unit = "TFLOP/s" if flops / (NOMINAL_TFLOPS * 1e12) >= nbytes / (NOMINAL_GBS * 1e9) else "GB/s"
        cases.append(
            {
                "name": f"{name}@{tag}",
                "op": name,
                "set": tag,
                "kind": kind,
                "dtype": dtype,
                "params": params,
                "inputs": inputs,
                "outShape": list(out_shape),
                "rowLen": row_len,
                "rows": rows,
                "refStride": ref_stride(rows, row_len),
                "flops": flops,
                "bytes": nbytes,
                "unit": unit,
                "shape": shape_str,
            }
        )

    if small:
        sets = [("small", (3, 4, 6), 2, 128, 256, 512, 16, 10)]
        vae = [(8, 8, 6, 10, 1), (4, 4, 12, 20, 2)]
        demo = [("demo", (2, 4, 4), 2, 64)]
    else:
        # (tag, grid, heads, head_dim, dim, ffn, text_len, valid text keys)
        sets = [
            ("81f", (21, 30, 52), 12, 128, 1536, 8960, 512, 100),
            ("16f", (5, 30, 52), 12, 128, 1536, 8960, 512, 100),
        ]
        # The decoder's causal 3x3x3 convs as the chunked decode runs them (one latent frame per
        # chunk; time is upsampled x2 twice): (cin, cout, H, W, frames), 2 cached frames in front.
        vae = [
            (384, 384, 60, 104, 1),
            (384, 384, 120, 208, 2),
            (192, 192, 240, 416, 4),
            (96, 96, 480, 832, 4),
        ]
        demo = [("demo", (5, 8, 8), 4, 64)]

    def attention_cases(tag, grid, H, D, text, valid, which):
        F_, Hh, W = grid
        L = F_ * Hh * W
        dim = H * D
        qkv_bytes = 4 * L * dim * esize

        def attn(name, heads, hd, extra, flops, nbytes, lk=None):
            lk = L if lk is None else lk
            ins = [inp("q", [1, L, heads, hd]), inp("k", [1, lk, heads, hd]), inp("v", [1, lk, heads, hd])]
            params = {"grid": list(grid), "heads": heads, "headDim": hd, "lk": lk, **extra}
            add(name, tag, "attention", params, ins, [1, L, heads, hd], heads * hd, flops, nbytes,
                f"q 1x{L}x{heads}x{hd}, kv 1x{lk}x{heads}x{hd}" + (f", grid {F_}x{Hh}x{W}" if extra.get("group", "full") != "full" or extra.get("rope") else "")
                + (f", {extra['keyLen']} valid keys" if extra.get("keyLen") is not None else ""))

        full_flops = 4 * L * L * dim
        if "full" in which:
            attn("attn.full.d128", H, D, {"group": "full", "rope": False}, full_flops, qkv_bytes)
        if "full64" in which:
            attn("attn.full.d64", 2 * H, D // 2, {"group": "full", "rope": False}, full_flops, qkv_bytes)
        if "rope" in which:
            attn("attn.full.rope.d%d" % D, H, D, {"group": "full", "rope": True}, full_flops, qkv_bytes)
        if "spatial" in which:
            attn("attn.spatial.d128", H, D, {"group": "spatial", "rope": False},
                 4 * F_ * (Hh * W) ** 2 * dim, qkv_bytes)
        if "temporal" in which:
            attn("attn.temporal.d128", H, D, {"group": "temporal", "rope": False},
                 4 * Hh * W * F_ ** 2 * dim, qkv_bytes)
        if "cross" in which:
            kv_bytes = 2 * text * dim * esize
            attn("attn.cross512.d128", H, D, {"group": "full", "rope": False, "keyLen": None},
                 4 * L * text * dim, 2 * L * dim * esize + kv_bytes, lk=text)
            attn("attn.cross512.mask.d128", H, D, {"group": "full", "rope": False, "keyLen": valid},
                 4 * L * valid * dim, 2 * L * dim * esize + 2 * valid * dim * esize, lk=text)

    for tag, grid, H, D, dim, ffn, text, valid in sets:
        L = math.prod(grid)
        attention_cases(tag, grid, H, D, text, valid, {"full", "full64", "rope", "spatial", "temporal", "cross"})
        # The DiT's GEMMs (Linear: x [L, in] @ W[out, in]^T).
        for name, k, n, epi, bias in [
            ("gemm.proj", dim, dim, "none", False),
            ("gemm.ffn_up", dim, ffn, "none", False),
            ("gemm.ffn_up.bias_gelu", dim, ffn, "gelu_tanh", True),
            ("gemm.ffn_down", ffn, dim, "none", False),
        ]:
            ins = [inp("x", [L, k]), inp("w", [n, k])] + ([inp("b", [n])] if bias else [])
            add(name, tag, "linear", {"epilogue": epi, "bias": bias}, ins, [L, n], n, 2 * L * k * n,
                (L * k + n * k + L * n) * esize, f"{L}x{k} @ ({n}x{k})^T" + (" + bias, gelu_tanh" if bias else ""))
        # Patch embedding: latents [1, F, 2Hh, 2W, 16] -> tokens [1, L, dim].
        F_, Hh, W = grid
        cz = 16
        ins = [inp("x", [1, F_, 2 * Hh, 2 * W, cz]), inp("w", [dim, cz, 1, 2, 2]), inp("b", [dim])]
        add("patch_embed", tag, "patch", {"grid": list(grid)}, ins, [1, L, dim], dim, 2 * L * dim * cz * 4,
            (L * cz * 4 + dim * cz * 4 + L * dim) * esize, f"1x{F_}x{2 * Hh}x{2 * W}x{cz} -> 1x{L}x{dim}, k=s=(1,2,2)")
        # adaLN: LayerNorm (no affine) then x*(1+scale)+shift, scale/shift per sample; gated residual x + gate*y.
        ins = [inp("x", [1, L, dim]), inp("scale", [1, dim]), inp("shift", [1, dim])]
        add("layernorm.modulate", tag, "layernorm", {"eps": 1e-6}, ins, [1, L, dim], dim, 10 * L * dim,
            2 * L * dim * esize, f"1x{L}x{dim}, scale/shift 1x{dim}", unit="GB/s")
        ins = [inp("x", [1, L, dim]), inp("y", [1, L, dim]), inp("gate", [1, dim])]
        add("gated_residual", tag, "gated_residual", {}, ins, [1, L, dim], dim, 2 * L * dim,
            3 * L * dim * esize, f"1x{L}x{dim}, gate 1x{dim}", unit="GB/s")

    for cin, cout, H, W, T in vae:
        ins = [inp("x", [1, T, H, W, cin]), inp("prev", [1, 2, H, W, cin]), inp("w", [cout, cin, 3, 3, 3]), inp("b", [cout])]
        add(f"conv3d.causal.{cin}to{cout}", f"{H}x{W}x{T}f", "conv3d", {"cin": cin, "cout": cout},
            ins, [1, T, H, W, cout], cout, 2 * T * H * W * cout * cin * 27,
            ((T + 2) * H * W * cin + cout * cin * 27 + T * H * W * cout) * esize,
            f"x 1x{T}x{H}x{W}x{cin} + 2 cached frames, w {cout}x{cin}x3x3x3")

    for tag, grid, H, D in demo:
        attention_cases(tag, grid, H, D, 0, 0, {"rope"})

    # Generator check (untimed): our randn against philox.py's regeneration.
    add("rng", "check", "rng", {}, [inp("x", [3, 1000, 7])], [3, 1000, 7], 7, 0, 0, "3x1000x7", unit="GB/s")
    cases[-1]["checkOnly"] = True
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--ref-dir", default=None)
    ap.add_argument("--dtype", default=None, help="override: f32 (default with --small) or bf16")
    a = ap.parse_args()
    ref_dir = a.ref_dir or os.path.join(os.path.dirname(os.path.abspath(a.out)), "ref")
    cases = build(a.small, a.dtype)
    for c in cases:
        c["ref"] = os.path.join(ref_dir, c["name"].replace("/", "_").replace("@", "_at_") + ".f32")
    m = {"small": a.small, "refDir": ref_dir, "cases": cases}
    os.makedirs(ref_dir, exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(m, f, indent=1)
    print(f"{len(cases)} cases -> {a.out}")


if __name__ == "__main__":
    main()
