#!/usr/bin/env python3
"""Golden tensors for Wan2.2 A14B's two-expert schedule: the latents after a few
sampling steps that cross the boundary, from given noise and prompt embeddings, in
float64.

Two tiny random experts of the golden transformer's geometry (one layer each, so the
fixture stays small) under the names transformer.* and transformer_2.*, and
  - input.noise             [1, F, H, W, C] the engine's own noise for the seed
                            (tessera_ref/rng.py), so the engine's generate() starts from it;
  - input.context           [1, Lt, text_dim] the prompt's text states (rows past the
                            prompt zero, as Wan pads them);
  - input.negative_context  the negative prompt's;
  - input.sigmas            the noise levels before the shift (the engine's `sigmas`);
  - output.sigmas, output.timesteps  the shifted schedule (float32 arithmetic, as
                            diffusers' FlowMatchEulerDiscreteScheduler keeps it);
  - output.experts          the expert of each step (int32), diffusers' rule
                            (t >= boundary_ratio·1000: the first);
  - output.latents          the Euler sample after every step [1, F, H, W, C], float64
                            arithmetic on the float32 values stored, written as float32.
__metadata__ holds the config, boundary_ratio, shift, guidance and guidance_2.

Usage (repo root; torch and numpy, no GPU needed):
    python3 training/make_golden_a14b.py
writes packages/core/test-fixtures/golden/wan_a14b_schedule.safetensors (--out DIR elsewhere).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from make_golden import TRANSFORMER_CONFIG, channels_first, channels_last, default_std, f32, fixture_meta, load, random_weights  # noqa: E402
from tessera_ref import WanTransformer, sample_two_experts, tessera_randn, write_safetensors  # noqa: E402

DEFAULT_OUT = os.path.join(HERE, "..", "packages", "core", "test-fixtures", "golden")
NAME = "wan_a14b_schedule"

CONFIG = {**TRANSFORMER_CONFIG, "num_layers": 1}
BOUNDARY_RATIO = 0.875  # Wan2.2 T2V-A14B
SHIFT = 3.0
# Before the shift; shifted: t ≈ 1000, 964, 818, 563: two steps per expert.
SIGMAS = [1.0, 0.9, 0.6, 0.3]
GUIDANCE = 5.0
GUIDANCE_2 = 3.0
NOISE_SEED = 11
LATENT = (1, 3, 4, 6, CONFIG["in_channels"])  # [B, F, H, W, C]: grid 3x2x3
TEXT_LEN = 8

def shifted_schedule(sigmas: list[float], shift: float) -> tuple[list[float], list[float]]:
    """σ = shift·s / (1 + (shift − 1)·s) and t = 1000·σ, each operation rounded to float32."""
    f = np.float32
    sig = [f(f(f(shift) * f(s)) / f(f(1) + f(f(shift - 1) * f(s)))) for s in sigmas]
    return [float(s) for s in sig], [float(f(s * f(1000))) for s in sig]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=20250)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    def std_for(name, shape):
        if name.endswith("scale_shift_table"):
            return "normal", 1.0 / math.sqrt(shape[-1])
        return default_std(name, shape)

    experts_w = [
        random_weights(WanTransformer(CONFIG), np.random.default_rng([args.seed, 7 + i]), std_for) for i in range(2)
    ]
    rng = np.random.default_rng([args.seed, 9])
    context = np.zeros((1, TEXT_LEN, CONFIG["text_dim"]), dtype=np.float32)
    context[:, :5] = rng.standard_normal((1, 5, CONFIG["text_dim"]))
    negative = np.zeros((1, TEXT_LEN, CONFIG["text_dim"]), dtype=np.float32)
    negative[:, :3] = rng.standard_normal((1, 3, CONFIG["text_dim"]))
    noise = tessera_randn(LATENT, NOISE_SEED)

    sig, ts = shifted_schedule(SIGMAS, SHIFT)
    boundary = BOUNDARY_RATIO * 1000
    models = [load(WanTransformer(CONFIG), w, torch.float64, "cpu") for w in experts_w]
    x, chosen = sample_two_experts(
        models,
        channels_first(torch.from_numpy(noise).double()),
        torch.from_numpy(context).double(),
        torch.from_numpy(negative).double(),
        sig,
        ts,
        boundary,
        GUIDANCE,
        GUIDANCE_2,
    )
    assert chosen == [0, 0, 1, 1], f"the schedule should cross the boundary mid-way, got experts {chosen}"
    print(f"timesteps {ts}, experts {chosen}")

    tensors: dict[str, np.ndarray] = {}
    for prefix, w in zip(("transformer", "transformer_2"), experts_w):
        tensors.update({f"{prefix}.{k}": v for k, v in w.items()})
    tensors["input.noise"] = noise
    tensors["input.context"] = context
    tensors["input.negative_context"] = negative
    tensors["input.sigmas"] = f32(np.array(SIGMAS))
    tensors["output.sigmas"] = f32(np.array(sig))
    tensors["output.timesteps"] = f32(np.array(ts))
    tensors["output.experts"] = np.array(chosen, dtype=np.int32)
    tensors["output.latents"] = f32(channels_last(x).numpy())
    desc = {
        "transformer.*": "the first (high-noise) expert, diffusers names",
        "transformer_2.*": "the second (low-noise) expert",
        "input.noise": f"the engine's randn({list(LATENT)}, seed {NOISE_SEED}) [B, F, H, W, C]",
        "input.context": "prompt text states [1, Lt, text_dim], rows 5.. zero",
        "input.negative_context": "negative prompt text states, rows 3.. zero",
        "input.sigmas": "noise levels before the shift (the engine's sigmas option)",
        "output.sigmas": "shifted noise levels (float32 arithmetic)",
        "output.timesteps": "1000 x the shifted noise levels, what each step's model is given",
        "output.experts": "the expert of each step: 0 at t >= boundary_ratio x 1000, else 1 (int32)",
        "output.latents": "the sample after every step [B, F, H, W, C]",
    }
    params = {
        "boundary_ratio": str(BOUNDARY_RATIO),
        "shift": str(SHIFT),
        "guidance": str(GUIDANCE),
        "guidance_2": str(GUIDANCE_2),
        "noise_seed": str(NOISE_SEED),
    }
    reference = "float64 on cpu from the float32 weights and inputs stored here"
    meta = fixture_meta(NAME, CONFIG, args.seed, desc, "make_golden_a14b.py", reference=reference, params=params)
    path = os.path.join(args.out, f"{NAME}.safetensors")
    size = write_safetensors(path, tensors, meta)
    print(f"wrote {path}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
