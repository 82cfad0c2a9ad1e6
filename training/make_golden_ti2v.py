#!/usr/bin/env python3
"""Golden tensors for Wan2.2 TI2V-5B's family (tiny random configs), in the format of
make_golden.py (whose helpers this reuses):

  wan22_vae.safetensors  the Wan2.2 VAE (is_residual, patch_size 2, z 8 here): chunked
                         encode of 5 frames and decode of 3 latent frames.
  wan_ti2v.safetensors   the transformer with per-token timesteps (expand_timesteps:
                         one timestep per token frame, the first frame at 0), and a
                         TI2V image-to-video pipeline run: 3 Euler steps with
                         classifier-free guidance from the engine's own noise for a
                         seed (tessera_ref/rng.py), given text states and an image,
                         the first latent frame held at the encoded image with its
                         tokens at timestep 0 (diffusers' WanImageToVideoPipeline with
                         expand_timesteps); the pipeline uses wan22_vae's weights.

Usage: python3 training/make_golden_ti2v.py --out DIR [--seed N] [--device cuda|cpu]
(CPU torch 1.13+ is enough; seconds). Copy DIR/*.safetensors into
packages/core/test-fixtures/golden/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from make_golden import (  # noqa: E402
    LAYOUT,
    TRANSFORMER_CONFIG,
    Run,
    bf16_note,
    channels_first,
    channels_last,
    default_std,
    f32,
    fixture_meta,
    load,
    random_weights,
    vae_fixture,
)
from tessera_ref import WanTransformer, WanVAE, tessera_randn, write_safetensors  # noqa: E402


# Wan2.2's VAE layout (residual blocks, patchify 2, temporal pattern) at a few channels:
# encoder 4..16 wide, decoder 3..12 (decoder_base_dim differs from base_dim, as in the
# published 160 / 256), so every shortcut kind occurs (identity, channel-regrouping
# AvgDown3D, DupUp3D with r = factor and r < factor); one residual block per stage
# (two in the decoder's) keeps the file small.
VAE22_CONFIG = {
    "base_dim": 4,
    "decoder_base_dim": 3,
    "z_dim": 8,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 1,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    "dropout": 0.0,
    "latents_mean": [0.1, -0.2, 0.3, -0.4, 0.05, 0.0, -0.1, 0.2],
    "latents_std": [1.5, 0.5, 2.0, 1.0, 0.8, 1.2, 0.7, 1.1],
    "in_channels": 12,
    "out_channels": 12,
    "is_residual": True,
    "patch_size": 2,
}

# WAN_TINY with the VAE's 8 latent channels (the engine's "tiny-ti2v" transformer).
TI2V_CONFIG = {**TRANSFORMER_CONFIG, "in_channels": 8, "out_channels": 8}

# The pipeline run (packages/core/src/golden/ti2v-checks.ts passes the same options).
PIPE = {
    "seed": 1234,
    "width": 64,
    "height": 32,
    "frames": 9,
    "steps": 3,
    "sigmas": [1.0, 0.8, 0.5],
    "shift": 5.0,
    "guidance": 5.0,
}


def vae_std(name, shape):
    kind, std = default_std(name, shape)
    if name == "decoder.conv_out.weight":
        std *= 0.5  # keep decoded pixels mostly inside the clamp
    return kind, std


def vae_weights(seed: int):
    return random_weights(WanVAE(VAE22_CONFIG), np.random.default_rng([seed, 22]), vae_std)


def make_vae(run: Run, seed: int):
    c = VAE22_CONFIG
    weights = vae_weights(seed)
    rng = np.random.default_rng([seed, 23])
    video = f32(rng.uniform(-1.0, 1.0, (1, 5, 32, 32, 3)))
    latents = f32(rng.standard_normal((1, 3, 2, 2, c["z_dim"])))
    inputs = {"video": torch.from_numpy(video), "decode_latents": torch.from_numpy(latents)}

    tensors = vae_fixture(run, "wan22_vae", c, weights, inputs)
    desc = {
        "input.video": "video in [-1, 1] [1, 5, 32, 32, 3]; patchified 2x2, encoded in chunks of 1, 4 frames",
        "input.decode_latents": "raw latents [1, 3, 2, 2, z_dim] (post_quant_conv input)",
        "input.decode_latents_normalized": "the same latents normalised, (z - latents_mean) / latents_std",
        "output.encode_moments": "quant_conv output [1, 2, 2, 2, 2*z_dim]: mean channels, then log-variance",
        "output.encode_latents": "(mean - latents_mean) / latents_std [1, 2, 2, 2, z_dim]",
        "output.decode": "decode(input.decode_latents), unpatchified, clamped to [-1, 1] [1, 9, 32, 32, 3]",
        "output_bf16.*": "the same under bf16 autocast on the GPU",
    }
    return tensors, c, desc, {}


def transformer_std(name, shape):
    if name.endswith("scale_shift_table"):
        return "normal", 1.0 / math.sqrt(shape[-1])
    return default_std(name, shape)


def per_token(ts: torch.Tensor, hw: int) -> torch.Tensor:
    """[B, F'] per token frame -> [B, F'·hw] per token (tokens are frame-major)."""
    return ts.repeat_interleave(hw, dim=1)


def euler_sigmas(sigmas: list[float], shift: float) -> list[float]:
    """The engine's (and diffusers') Euler schedule from explicit sigmas, in float32 arithmetic."""
    f = np.float32
    out = [float(f(f(f(shift) * f(s)) / f(f(1) + f(f(shift - 1) * f(s))))) for s in sigmas]
    return [*out, 0.0]


def make_ti2v(run: Run, seed: int):
    c = TI2V_CONFIG
    v = VAE22_CONFIG
    rng = np.random.default_rng([seed, 24])
    weights = random_weights(WanTransformer(c), rng, transformer_std)
    vweights = vae_weights(seed)

    # 1. One forward with a timestep per token frame: grid 3x2x3, first frame at 0.
    b, f, h, w = 2, 3, 4, 6
    hw = (h // 2) * (w // 2)
    latents = f32(rng.standard_normal((b, f, h, w, c["in_channels"])))
    context = f32(rng.standard_normal((b, 7, c["text_dim"])))
    timesteps = np.array([[0.0, 700.0, 650.0], [0.0, 123.456, 999.0]], dtype=np.float32)
    fwd_in = {
        "latents": torch.from_numpy(latents),
        "timesteps": torch.from_numpy(timesteps),
        "context": torch.from_numpy(context),
    }

    def fwd(m: WanTransformer, x):
        ts = per_token(x["timesteps"], hw)
        return {"velocity": channels_last(m(channels_first(x["latents"]), ts, x["context"]))}

    ref, bf16 = run("ti2v transformer", lambda: WanTransformer(c), weights, fwd_in, fwd)

    # 2. The TI2V image-to-video pipeline run.
    p = PIPE
    lf = 1 + (p["frames"] - 1) // 4
    lh, lw = p["height"] // 16, p["width"] // 16
    noise = tessera_randn((1, lf, lh, lw, v["z_dim"]), p["seed"])
    image = f32(rng.uniform(-1.0, 1.0, (1, 1, p["height"], p["width"], 3)))
    cond = f32(rng.standard_normal((1, 6, c["text_dim"])))
    uncond = f32(rng.standard_normal((1, 6, c["text_dim"])))
    sig = euler_sigmas(p["sigmas"], p["shift"])
    steps_t = [float(np.float32(s * 1000)) for s in sig[:-1]]
    tokens_hw = (lh // 2) * (lw // 2)

    def pipeline(dev, dtype):
        tm = load(WanTransformer(c), weights, dtype, dev)
        vm = load(WanVAE(v), vweights, dtype, dev)
        t = lambda a: torch.from_numpy(a).to(dev, dtype)  # noqa: E731
        with torch.no_grad():
            mu = vm.encode(channels_first(t(image)))[:, : v["z_dim"]]
            k = vm.normalize_latents(mu)  # [1, z, 1, lh, lw]
            x = channels_first(t(noise))
            ctx = torch.cat([t(cond), t(uncond)])
            mask = torch.ones_like(x)
            mask[:, :, 0] = 0
            for i, ti in enumerate(steps_t):
                inp = (1 - mask) * k + mask * x
                ts = per_token(torch.tensor([[0.0] + [ti] * (lf - 1)] * 2, dtype=torch.float64, device=dev), tokens_hw)
                out = tm(torch.cat([inp, inp]), ts.to(dtype), ctx)
                vc, vu = out.chunk(2)
                vel = vu + p["guidance"] * (vc - vu)
                x = x + (sig[i + 1] - sig[i]) * vel
            x = (1 - mask) * k + mask * x
            video = vm.decode(vm.denormalize_latents(x))
        return {"pipe_latents": channels_last(x).cpu(), "pipe_video": channels_last(video).cpu()}

    pref = pipeline(run.device, torch.float64)
    pbf = {}
    if run.device == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            pbf = {k: v_.float() for k, v_ in pipeline("cuda", torch.float32).items()}

    tensors = dict(weights)
    tensors.update({f"input.{k}": v_ for k, v_ in fwd_in.items()})
    tensors["input.timesteps_per_token"] = f32(per_token(fwd_in["timesteps"], hw))
    tensors["output.velocity"] = f32(ref["velocity"])
    if bf16:
        tensors["output_bf16.velocity"] = f32(bf16["velocity"])
    tensors["input.pipe_image"] = image
    tensors["input.pipe_cond_states"] = cond
    tensors["input.pipe_uncond_states"] = uncond
    tensors["input.pipe_noise"] = noise
    for k, v_ in pref.items():
        tensors[f"output.{k}"] = f32(v_)
    for k, v_ in pbf.items():
        tensors[f"output_bf16.{k}"] = f32(v_)
    desc = {
        "input.latents": "noisy latent video [B, F, H, W, in_channels]",
        "input.timesteps": "timestep per token frame [B, F/pt] (the first at 0: a known frame)",
        "input.timesteps_per_token": "the same per token [B, L] (diffusers' expand_timesteps form)",
        "input.context": "text states [B, Lt, text_dim]",
        "output.velocity": "forward(latents, per-token timesteps, context) [B, F, H, W, out_channels]",
        "input.pipe_image": "the image [1, 1, H, W, 3] in [-1, 1] at the generation size",
        "input.pipe_cond_states": "text states of the prompt [1, 6, text_dim]",
        "input.pipe_uncond_states": "text states of the negative prompt [1, 6, text_dim]",
        "input.pipe_noise": "the engine's randn(latent shape, seed) (tessera_ref/rng.py), for reference",
        "output.pipe_latents": "latents after the 3-step TI2V image-to-video run [1, F, H/16, W/16, z]",
        "output.pipe_video": "their decode with wan22_vae's weights [1, frames, H, W, 3]",
        "output_bf16.*": "the same under bf16 autocast on the GPU",
    }
    return tensors, c, desc, {"pipeline": json.dumps({**p, "vae_fixture": "wan22_vae"})}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20250)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if hasattr(torch.backends, "cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    run = Run(args.device)
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else None
    for name, maker in (("wan22_vae", make_vae), ("wan_ti2v", make_ti2v)):
        t0 = time.time()
        print(f"{name}:")
        tensors, config, desc, extra = maker(run, args.seed)
        meta = fixture_meta(
            name,
            config,
            args.seed,
            desc,
            "make_golden_ti2v.py",
            reference=f"float64 on {args.device} from the float32 weights and inputs stored here",
            bf16=bf16_note(gpu),
            layout=LAYOUT,
            extra=extra,
        )
        path = os.path.join(args.out, f"{name}.safetensors")
        size = write_safetensors(path, tensors, meta)
        print(f"  wrote {path}: {size / 1024:.0f} KiB ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
