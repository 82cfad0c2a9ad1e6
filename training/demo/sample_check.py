"""The trainer's sampler on the exported demo model, as a fixture the engine is
checked against (packages/core/src/pipelines/demo-model.test.ts): same weights
(the float16 files of the model folder), same initial noise (Tessera's Philox
randn, regenerated bit for bit by benchmarks/kernels/philox.py), same Euler σ grid
as the engine's FlowMatchEuler scheduler, classifier-free guidance, VAE decode.
Runs on the CPU in float64 (the exact-math answer); a CPU-only torch is enough.

    cd training && python3 -m demo.sample_check --model ../packages/core/models/tessera-world \\
        --out ../packages/core/test-fixtures/demo-model/sampler.safetensors"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

from demo.common import WordTokenizer, text_states
from tessera_ref import UMT5Encoder, WanTransformer, WanVAE, read_safetensors, write_safetensors

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "kernels"))
from philox import randn  # noqa: E402

T = 1000


def load(module, path):
    tensors, _ = read_safetensors(path)
    module.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in tensors.items()})
    return module.double().eval()


def euler_sigmas(steps: int, shift: float) -> tuple[list[float], list[float]]:
    """The engine's FlowMatchEuler grid (schedulers/euler.ts): float32 σ, t = σ·T."""
    f32 = lambda x: float(np.float32(x))  # noqa: E731
    sh = lambda s: shift * s / (1 + (shift - 1) * s)  # noqa: E731
    hi, lo = f32(sh(f32(1.0))) * T, f32(sh(f32(1 / T))) * T
    ts = [hi + i * (lo - hi) / (steps - 1) for i in range(steps)] if steps > 1 else [hi]
    ts[-1] = lo
    sig = [f32(sh(t / T)) for t in ts]
    return sig + [0.0], [f32(s * T) for s in sig]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--prompt", default="a red circle moves to the right on the left on a black background")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--guidance", type=float, default=5.0)
    a = ap.parse_args()
    m = a.model
    cfg = lambda sub: json.load(open(os.path.join(m, sub, "config.json")))  # noqa: E731
    extra = json.load(open(os.path.join(m, "tessera.json")))
    keep = lambda d, cls: {k: v for k, v in d.items() if k in cls.__dataclass_fields__}  # noqa: E731
    from tessera_ref.umt5 import UMT5Config
    from tessera_ref.wan_transformer import WanTransformerConfig
    from tessera_ref.wan_vae import WanVAEConfig

    dit = load(WanTransformer(WanTransformerConfig(**keep(cfg("transformer"), WanTransformerConfig))),
               os.path.join(m, "transformer", "diffusion_pytorch_model.safetensors"))
    vcfg = WanVAEConfig(**keep(cfg("vae"), WanVAEConfig))
    vae = load(WanVAE(vcfg), os.path.join(m, "vae", "diffusion_pytorch_model.safetensors"))
    t5 = load(UMT5Encoder(UMT5Config(**keep(cfg("text_encoder"), UMT5Config))),
              os.path.join(m, "text_encoder", "model.safetensors"))
    tok = WordTokenizer(os.path.join(m, "tokenizer", "tokenizer.json"))
    shift = float(extra["defaults"]["shift"])
    length = int(extra["textLength"])
    frames, size = int(extra["defaults"]["frames"]), int(extra["defaults"]["width"])

    with torch.no_grad():
        ctx = torch.cat([text_states(t5, tok.batch([a.prompt], length)), text_states(t5, tok.batch([""], length))]).double()
        lat_shape = [1, (frames - 1) // 4 + 1, size // 8, size // 8, vcfg.z_dim]  # the engine's channels-last latents
        x = randn(lat_shape, a.seed).double().permute(0, 4, 1, 2, 3)
        sig, ts = euler_sigmas(a.steps, shift)
        for i in range(a.steps):
            t = torch.full((2,), ts[i], dtype=torch.float64)
            v_pos, v_neg = dit(torch.cat([x, x]), t, ctx).chunk(2)
            v = a.guidance * v_pos + (1 - a.guidance) * v_neg
            x = x + (sig[i + 1] - sig[i]) * v
        mean = torch.tensor(vcfg.latents_mean, dtype=torch.float64).view(1, -1, 1, 1, 1)
        std = torch.tensor(vcfg.latents_std, dtype=torch.float64).view(1, -1, 1, 1, 1)
        video = vae.decode(x * std + mean)  # [1, 3, T, H, W]
    latents = x.permute(0, 2, 3, 4, 1).float().numpy()
    pick = [0, frames // 2, frames - 1]
    frames_out = video[0, :, pick].permute(1, 2, 3, 0).float().numpy()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_safetensors(a.out, {"latents": latents, "frames": frames_out}, {
        "prompt": a.prompt, "seed": str(a.seed), "steps": str(a.steps), "guidance": str(a.guidance),
        "scheduler": "euler", "shift": str(shift), "frame_indices": json.dumps(pick), "sigmas": json.dumps(sig),
        "description": "demo.sample_check: trainer's sampler (float64, CPU) on the exported float16 weights; "
                       "latents [1, F, h, w, C] channels-last as the engine returns them; frames [3, H, W, 3] in [-1, 1]",
        "torch": torch.__version__,
    })
    print(json.dumps({"out": a.out, "latents_absmax": float(np.abs(latents).max()), "sigmas": sig}))


if __name__ == "__main__":
    main()
