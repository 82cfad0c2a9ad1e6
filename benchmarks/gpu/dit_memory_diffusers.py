#!/usr/bin/env python3
"""The diffusers side of benchmarks/gpu/dit-memory.mjs (issue #18, point 4): diffusers' own
WanTransformer3DModel with the Wan2.1-1.3B geometry, random weights, bf16, one forward on a
batch of 2 (both guidance branches) with 512 text tokens, at 480p/81, 480p/161 and 720p/81
frames. Per shape: the bytes in use before the call (weights and inputs), the peak during it
(torch.cuda.max_memory_allocated after reset_peak_memory_stats), the activation (peak minus
in use before) and the median time of --reps calls (host clock around torch.cuda.synchronize).

Usage: python3 dit_memory_diffusers.py --diffusers PATH/src [--shapes 480p81,480p161,720p81]
                                       [--reps 3] [--out FILE]
(the GPU host has no diffusers package: stage its src/ with prepare.sh --diffusers DIR)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

SHAPES = {"480p81": (21, 60, 104), "480p161": (41, 60, 104), "720p81": (21, 90, 160)}
WAN21_1_3B = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=12,
    attention_head_dim=128,
    in_channels=16,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=8960,
    num_layers=30,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    image_dim=None,
    added_kv_proj_dim=None,
    rope_max_seq_len=1024,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--diffusers", required=True, help="a diffusers source tree's src/")
    ap.add_argument("--shapes", default="480p81,480p161,720p81")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--text", type=int, default=512)
    ap.add_argument("--out")
    a = ap.parse_args()
    sys.path.insert(0, a.diffusers)
    import diffusers
    from diffusers import WanTransformer3DModel

    dev = torch.device("cuda")
    torch.manual_seed(0)
    with torch.device(dev):
        m = WanTransformer3DModel(**WAN21_1_3B)
    m = m.to(torch.bfloat16).eval()
    torch.cuda.synchronize()
    weights = torch.cuda.memory_allocated()
    rec = {
        "what": "diffusers WanTransformer3DModel, Wan2.1-1.3B geometry, random weights, bf16, batch 2, "
        f"{a.text} text tokens: peak memory and time of one forward",
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "weightsBytes": weights,
        "shapes": {},
    }
    for name in a.shapes.split(","):
        f, h, w = SHAPES[name]
        x = torch.randn(2, 16, f, h, w, device=dev, dtype=torch.bfloat16)
        t = torch.tensor([500, 500], device=dev)
        ctx = torch.randn(2, a.text, 4096, device=dev, dtype=torch.bfloat16)
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode():
            y = m(x, t, ctx, return_dict=False)[0]
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
            del y
            ms = []
            for _ in range(a.reps):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                y = m(x, t, ctx, return_dict=False)[0]
                torch.cuda.synchronize()
                ms.append((time.perf_counter() - t0) * 1e3)
                del y
        r = {
            "latent": [2, 16, f, h, w],
            "tokens": f * h * w // 4,
            "inUseBefore": before,
            "peak": peak,
            "activationBytes": peak - before,
            "ms": statistics.median(ms) if ms else None,
            "allMs": ms,
        }
        rec["shapes"][name] = r
        print(
            f"diffusers {name}: peak {peak / 2**30:.2f} GiB (in use before {before / 2**30:.2f}, "
            f"activation {(peak - before) / 2**30:.2f} GiB), {r['ms'] or 0:.1f} ms",
            flush=True,
        )
        del x, t, ctx
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(rec, fh, indent=1)
    else:
        print(json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
