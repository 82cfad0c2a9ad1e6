#!/usr/bin/env python3
"""A golden fixture of the Wan2.1 VAE made by diffusers' own AutoencoderKLWan, with
diffusers' own initialisation (not ours), for the bf16 accuracy check of the engine's
encode and decode against PyTorch's on the same weights and input.

Writes DIR/wan_vae_diffusers.safetensors in the layout of make_golden.py's wan_vae
fixture (same tensor names), so packages/core/src/golden/checks.ts runs the same VAE
checks on it, plus
  - output_bf16_cast.*  the model cast to bfloat16 as a whole (weights and activations),
                        the other way PyTorch users run bf16, for the record;
  - inter.encode.*      the encoder's stage outputs (conv_in, each down block, mid block,
                        head) over the whole chunked clip, float64 and bf16 autocast, to
                        say where an error arises.

Usage (GPU host; diffusers from a source tree, since it is not installed there):
    python3 training/make_golden_vae_diffusers.py --diffusers PATH/src --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from make_golden import FORMAT, LAYOUT, VAE_CONFIG, channels_first, channels_last, f32, rel_err  # noqa: E402
from tessera_ref import write_safetensors  # noqa: E402

# Wan2.1's structure at base_dim 4: diffusers' AutoencoderKLWan takes make_golden.py's
# VAE_CONFIG as it is (the same field names), so the two fixtures' VAEs match.
CONFIG = VAE_CONFIG


def stage_hooks(vae, store: dict[str, list[torch.Tensor]]):
    """Forward hooks on the encoder's stages: each chunk's output, in order."""
    enc = vae.encoder
    stages = [("conv_in", enc.conv_in)]
    stages += [(f"down_blocks.{i}", b) for i, b in enumerate(enc.down_blocks)]
    stages += [("mid_block", enc.mid_block), ("conv_out", enc.conv_out)]
    handles = []
    for name, mod in stages:

        def hook(_m, _i, out, name=name):
            store.setdefault(name, []).append(out.detach().double().cpu())

        handles.append(mod.register_forward_hook(hook))
    return handles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--diffusers", required=True, help="a diffusers source tree's src/ folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20251)
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.diffusers))
    import diffusers
    from diffusers import AutoencoderKLWan

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = "cuda"
    torch.manual_seed(args.seed)
    base = AutoencoderKLWan(**CONFIG).eval()  # diffusers' own initialisation, float32
    weights = {k: f32(v.numpy()) for k, v in base.state_dict().items()}
    rng = np.random.default_rng([args.seed, 2])
    video = f32(rng.uniform(-1.0, 1.0, (2, 5, 32, 32, 3)))
    latents = f32(rng.standard_normal((1, 3, 4, 4, CONFIG["z_dim"])))
    z = CONFIG["z_dim"]
    mean = torch.tensor(CONFIG["latents_mean"], dtype=torch.float64).view(1, z, 1, 1, 1)
    std = torch.tensor(CONFIG["latents_std"], dtype=torch.float64).view(1, z, 1, 1, 1)

    def model(dtype):
        m = AutoencoderKLWan(**CONFIG).eval()
        m.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
        return m.to(device=dev, dtype=dtype)

    def run(m, in_dtype, autocast: bool, stages: dict | None = None):
        x = channels_first(torch.from_numpy(video)).to(dev, in_dtype)
        zl = channels_first(torch.from_numpy(latents)).to(dev, in_dtype)
        handles = stage_hooks(m, stages) if stages is not None else []
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            moments = m._encode(x)
            dec = m.decode(zl).sample
        for h in handles:
            h.remove()
        moments = moments.double().cpu()
        # The pipelines normalise in the latents' dtype after the encode: (mu - mean) / std.
        mu = moments[:, :z]
        return {
            "encode_moments": channels_last(moments),
            "encode_latents": channels_last((mu - mean) / std),
            "decode": channels_last(dec.double().cpu()),
        }

    st64: dict[str, list[torch.Tensor]] = {}
    st16: dict[str, list[torch.Tensor]] = {}
    ref = run(model(torch.float64), torch.float64, False, st64)
    f32out = run(model(torch.float32), torch.float32, False)
    auto = run(model(torch.float32), torch.float32, True, st16)
    cast = run(model(torch.bfloat16), torch.bfloat16, False)
    report = {}
    for k in ref:
        report[k] = {
            "f32": rel_err(f32out[k], ref[k]),
            "bf16_autocast": rel_err(auto[k], ref[k]),
            "bf16_cast": rel_err(cast[k], ref[k]),
        }
        print(f"  {k}: f32 {report[k]['f32']:.2e}, bf16 autocast {report[k]['bf16_autocast']:.2e}, "
              f"bf16 cast {report[k]['bf16_cast']:.2e}")
    tensors: dict[str, np.ndarray] = dict(weights)
    tensors["input.video"] = video
    tensors["input.decode_latents"] = latents
    tensors["input.decode_latents_normalized"] = f32((torch.from_numpy(latents).double() - mean.view(z)) / std.view(z))
    for k, v in ref.items():
        tensors[f"output.{k}"] = f32(v.numpy())
    for k, v in auto.items():
        tensors[f"output_bf16.{k}"] = f32(v.numpy())
    for k, v in cast.items():
        tensors[f"output_bf16_cast.{k}"] = f32(v.numpy())
    stage_err = {}
    for name, parts in st64.items():
        whole64 = torch.cat(parts, 2)
        whole16 = torch.cat(st16[name], 2)
        tensors[f"inter.encode.{name}"] = f32(channels_last(whole64).numpy())
        tensors[f"inter_bf16.encode.{name}"] = f32(channels_last(whole16).numpy())
        stage_err[name] = rel_err(whole16, whole64)
        print(f"  encoder {name}: bf16 autocast vs float64 {stage_err[name]:.2e}")
    desc = {
        "input.video": "video in [-1, 1] [B, 5, 32, 32, 3]; encoded in chunks of 1, 4 frames",
        "input.decode_latents": "raw latents [1, 3, 4, 4, z_dim] as the decoder takes them",
        "input.decode_latents_normalized": "the same latents normalised, (z - latents_mean) / latents_std",
        "output.encode_moments": "AutoencoderKLWan._encode (quant_conv output), float64",
        "output.encode_latents": "(mean - latents_mean) / latents_std, float64",
        "output.decode": "AutoencoderKLWan.decode(input.decode_latents).sample (clamped), float64",
        "output_bf16.*": "the same, float32 weights under torch.autocast bfloat16",
        "output_bf16_cast.*": "the same, model and inputs cast to bfloat16",
        "inter.encode.*": "the encoder's stage outputs over the clip (chunks joined in time), float64",
        "inter_bf16.encode.*": "the same under bf16 autocast",
    }
    meta = {
        "format": FORMAT,
        "model": "wan_vae_diffusers",
        "config": json.dumps(CONFIG),
        "seed": str(args.seed),
        "torch_version": torch.__version__,
        "diffusers_version": diffusers.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "reference": f"diffusers AutoencoderKLWan in float64 on {torch.cuda.get_device_name(0)}",
        "bf16": f"torch.autocast bfloat16 on {torch.cuda.get_device_name(0)}",
        "errors": json.dumps({"outputs": report, "encoder_stages_bf16_autocast": stage_err}),
        "layout": LAYOUT,
        "tensors": json.dumps(desc),
        "generator": "training/make_golden_vae_diffusers.py (diffusers' AutoencoderKLWan and initialisation)",
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "wan_vae_diffusers.safetensors")
    size = write_safetensors(path, tensors, meta)
    print(f"  wrote {path}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
