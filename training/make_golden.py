#!/usr/bin/env python3
"""Golden tensors for the TypeScript engine's model tests.

For a tiny random member of each model family (Wan transformer, Wan VAE, umT5) this
writes one safetensors file holding
  - the weights under their diffusers / Hugging Face names, float32, PyTorch layout;
  - input.*   the inputs (float32, or int32 for token ids);
  - output.*  the reference outputs: float64 arithmetic on the float32-rounded weights
              and inputs, stored as float32;
  - output_bf16.*  the same model under bf16 autocast on the GPU (when there is one),
              for the GPU path's tolerance check; stored as float32;
  - inter.*   a few intermediate results, to localise a mismatch (transformer only);
and in __metadata__ the config (JSON, the checkpoint's field names), the seed, the
torch version and what each tensor is.

Video tensors (inputs and outputs) are channels-last [B, F, H, W, C], as the engine
holds them; weights keep PyTorch's layout, as checkpoints do.

Usage: python3 training/make_golden.py --out DIR [--seed N] [--device cuda|cpu]
Deterministic: weights and inputs come from numpy's PCG64 streams (stable across
numpy versions), so any machine writes the same weights and inputs; outputs agree to
float64 rounding.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tessera_ref import (  # noqa: E402
    UMT5Encoder,
    WanTransformer,
    WanVAE,
    read_safetensors,
    relative_position_bucket,
    sample_guided,
    tessera_randn,
    write_safetensors,
)

FORMAT = "tessera-golden/1"


def fixture_meta(model, config, seed, desc, generator, *, reference, bf16=None, layout=None, params=None, extra=None):
    """A fixture's __metadata__, in the one key order every make_golden*.py writes (the
    order is part of the file's bytes): params (the run's settings) go before the seed,
    bf16 and layout only where given, extra last. generator names the script."""
    meta = {
        "format": FORMAT,
        "model": model,
        "config": json.dumps(config),
        **(params or {}),
        "seed": str(seed),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "reference": reference,
    }
    if bf16 is not None:
        meta["bf16"] = bf16
    if layout is not None:
        meta["layout"] = layout
    meta["tensors"] = json.dumps(desc)
    meta["generator"] = f"training/{generator} (training/tessera_ref)"
    meta.update(extra or {})
    return meta


def bf16_note(gpu):
    """What output_bf16.* holds: autocast on the named GPU, or nothing without one."""
    return f"torch.autocast bfloat16 on {gpu}" if gpu else "not run (no GPU)"

# WAN_TINY in packages/core/src/models/wan/config.ts.
TRANSFORMER_CONFIG = {
    "patch_size": [1, 2, 2],
    "num_attention_heads": 2,
    "attention_head_dim": 24,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 32,
    "freq_dim": 32,
    "ffn_dim": 96,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}

# Wan2.1's channel multipliers and temporal pattern at base_dim 4 (the published VAE: 96):
# every kind of block appears (channel-changing shortcuts, 2d and 3d resamplers both ways).
VAE_CONFIG = {
    "base_dim": 4,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    "dropout": 0.0,
    "latents_mean": [
        -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
        0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
    ],
    "latents_std": [
        2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
        3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
    ],
    "in_channels": 3,
    "out_channels": 3,
}  # fmt: skip

# UMT5_TINY in packages/core/src/models/t5/config.ts (num_heads·d_kv ≠ d_model on
# purpose), but with 32 buckets reaching max_distance 16 inside a 20-token sequence, so
# the exact, logarithmic and capped bucket ranges all occur.
UMT5_CONFIG = {
    "vocab_size": 64,
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 48,
    "num_layers": 2,
    "num_heads": 3,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 16,
    "feed_forward_proj": "gated-gelu",
    "dense_act_fn": "gelu_new",
    "layer_norm_epsilon": 1e-6,
    "pad_token_id": 0,
    "eos_token_id": 1,
}

LAYOUT = (
    "video tensors (input.*/output.* of rank 5) are channels-last [B, F, H, W, C]; "
    "weights are in PyTorch layout under their checkpoint names"
)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 4, 1).contiguous()


def channels_first(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 4, 1, 2, 3).contiguous()


def f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def random_weights(model: torch.nn.Module, rng: np.random.Generator, std_for) -> dict[str, np.ndarray]:
    """One float32 array per state-dict entry, in registration order. Norm scales are
    1 + noise and biases nonzero, so a dropped or misplaced one changes the output."""
    out = {}
    for name, p in model.state_dict().items():
        shape = tuple(p.shape)
        kind, std = std_for(name, shape)
        z = rng.standard_normal(shape)
        out[name] = f32(1.0 + 0.1 * z if kind == "scale" else std * z)
    return out


def default_std(name: str, shape: tuple[int, ...]):
    if name.endswith("gamma") or (name.endswith(".weight") and len(shape) == 1):
        return "scale", 0.0  # RMS/layer-norm scales
    if name.endswith(".bias"):
        return "normal", 0.1
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
    return "normal", 1.0 / math.sqrt(fan_in)


def load(model: torch.nn.Module, weights: dict[str, np.ndarray], dtype, device):
    sd = {k: torch.from_numpy(v).to(dtype) for k, v in weights.items()}
    model.load_state_dict(sd, strict=True)
    return model.to(device=device, dtype=dtype).eval()


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.double().cpu()
    b = b.double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


class Run:
    """Runs fn(model, inputs) in float64 (reference), optionally float64 on the CPU
    (cross-check) and under bf16 autocast on the GPU."""

    def __init__(self, device: str):
        self.device = device
        self.notes: list[str] = []

    def __call__(self, name, build, weights, inputs, fn):
        ref_model = load(build(), weights, torch.float64, self.device)
        to = {k: v.to(self.device) for k, v in inputs.items()}
        to64 = {k: (v.double() if v.is_floating_point() else v) for k, v in to.items()}
        with torch.no_grad():
            ref = {k: v.cpu() for k, v in fn(ref_model, to64).items()}
        if self.device != "cpu":
            cpu_model = load(build(), weights, torch.float64, "cpu")
            cpu_in = {k: (v.double() if v.is_floating_point() else v) for k, v in inputs.items()}
            with torch.no_grad():
                cpu = fn(cpu_model, cpu_in)
            for k in ref:
                print(f"  {name}: float64 {self.device} vs cpu, {k}: rel err {rel_err(ref[k], cpu[k]):.2e}")
        bf16 = {}
        if self.device == "cuda":
            m32 = load(build(), weights, torch.float32, self.device)
            in32 = {k: (v.float() if v.is_floating_point() else v) for k, v in to.items()}
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                bf16 = {k: v.float().cpu() for k, v in fn(m32, in32).items()}
            for k in bf16:
                print(f"  {name}: bf16 autocast vs float64, {k}: rel err {rel_err(bf16[k], ref[k]):.2e}")
        return ref, bf16


def make_transformer(run: Run, seed: int):
    c = TRANSFORMER_CONFIG
    rng = np.random.default_rng([seed, 1])

    def std_for(name, shape):
        if name.endswith("scale_shift_table"):
            return "normal", 1.0 / math.sqrt(shape[-1])
        return default_std(name, shape)

    weights = random_weights(WanTransformer(c), rng, std_for)
    b, f, h, w = 2, 3, 6, 8  # grid 3x3x4: distinct extents so an axis mix-up shows
    latents = f32(rng.standard_normal((b, f, h, w, c["in_channels"])))
    context = f32(rng.standard_normal((b, 7, c["text_dim"])))
    timesteps = np.array([700.0, 123.456], dtype=np.float32)
    inputs = {
        "latents": torch.from_numpy(latents),
        "timesteps": torch.from_numpy(timesteps),
        "context": torch.from_numpy(context),
    }

    def fn(m: WanTransformer, x):
        inter = {}
        hooks = [
            m.condition_embedder.time_embedder.register_forward_hook(lambda _m, _i, o: inter.__setitem__("temb", o)),
            m.condition_embedder.time_proj.register_forward_hook(
                lambda _m, _i, o: inter.__setitem__("timestep_proj", o.unflatten(1, (6, -1)))
            ),
            m.condition_embedder.text_embedder.register_forward_hook(
                lambda _m, _i, o: inter.__setitem__("context", o)
            ),
            m.patch_embedding.register_forward_hook(
                lambda _m, _i, o: inter.__setitem__("patch_tokens", o.flatten(2).transpose(1, 2))
            ),
        ]
        for i, blk in enumerate(m.blocks):
            hooks.append(blk.register_forward_hook(lambda _m, _i, o, i=i: inter.__setitem__(f"block_{i}", o)))
        y = m(channels_first(x["latents"]), x["timesteps"], x["context"])
        for hk in hooks:
            hk.remove()
        out = {"velocity": channels_last(y)}
        out.update({f"inter.{k}": v for k, v in inter.items()})
        return out

    ref, bf16 = run("transformer", lambda: WanTransformer(c), weights, inputs, fn)
    tensors = dict(weights)
    tensors.update({f"input.{k}": v for k, v in inputs.items()})
    tensors["output.velocity"] = f32(ref.pop("velocity"))
    for k, v in ref.items():  # inter.*
        tensors[k] = f32(v)
    if bf16:
        tensors["output_bf16.velocity"] = f32(bf16["velocity"])
    desc = {
        "input.latents": "noisy latent video [B, F, H, W, in_channels]",
        "input.timesteps": "diffusion timestep per sample [B], 0..1000",
        "input.context": "text encoder states [B, Lt, text_dim] (no mask: every row attended)",
        "output.velocity": "forward(latents, timesteps, context) [B, F, H, W, out_channels]",
        "output_bf16.velocity": "the same under bf16 autocast on the GPU",
        "inter.temb": "time_embedder(sinusoid(t)) [B, dim] (before SiLU; also the head's modulation)",
        "inter.timestep_proj": "time_proj(silu(temb)) as [B, 6, dim]",
        "inter.context": "text_embedder(context) [B, Lt, dim]",
        "inter.patch_tokens": "patch_embedding output as tokens [B, L, dim], f-h-w order",
        "inter.block_N": "hidden states after block N [B, L, dim]",
    }
    return tensors, c, desc


def vae_fixture(run: Run, name: str, c: dict, weights: dict, inputs: dict) -> dict:
    """A VAE fixture's tensors (make_vae here, make_golden_ti2v.py's Wan2.2 VAE): the
    reference WanVAE encodes inputs["video"] and decodes inputs["decode_latents"] in float64
    (and under bf16 autocast on a GPU); the weights, the inputs with the decode latents also
    normalised, output.* and output_bf16.*."""

    def fn(m: WanVAE, x):
        moments = m.encode(channels_first(x["video"]))
        mu = moments[:, : c["z_dim"]]
        return {
            "encode_moments": channels_last(moments),
            "encode_latents": channels_last(m.normalize_latents(mu)),
            "decode": channels_last(m.decode(channels_first(x["decode_latents"]))),
        }

    ref, bf16 = run(name, lambda: WanVAE(c), weights, inputs, fn)
    clamped = float((ref["decode"].abs() >= 1.0).double().mean())
    print(f"  {name}: {100 * clamped:.2f}% of decoded values at the clamp")
    tensors = dict(weights)
    tensors.update({f"input.{k}": v for k, v in inputs.items()})
    mean = torch.tensor(c["latents_mean"], dtype=torch.float64)
    std = torch.tensor(c["latents_std"], dtype=torch.float64)
    tensors["input.decode_latents_normalized"] = f32((inputs["decode_latents"].double() - mean) / std)
    for k, v in ref.items():
        tensors[f"output.{k}"] = f32(v)
    for k, v in bf16.items():
        tensors[f"output_bf16.{k}"] = f32(v)
    return tensors


def make_vae(run: Run, seed: int):
    c = VAE_CONFIG
    rng = np.random.default_rng([seed, 2])

    def std_for(name, shape):
        kind, std = default_std(name, shape)
        # A smaller last layer keeps decoded pixels mostly inside the [-1, 1] clamp,
        # so the comparison sees values rather than the clamp.
        if name == "decoder.conv_out.weight":
            std *= 0.5
        return kind, std

    weights = random_weights(WanVAE(c), rng, std_for)
    video = f32(rng.uniform(-1.0, 1.0, (2, 5, 32, 32, c["in_channels"])))
    # Three latent frames: the first is decoded alone, the second starts the temporal
    # upsamplers from zeros, the third reads their cache; all three code paths run.
    latents = f32(rng.standard_normal((1, 3, 4, 4, c["z_dim"])))
    inputs = {"video": torch.from_numpy(video), "decode_latents": torch.from_numpy(latents)}

    tensors = vae_fixture(run, "vae", c, weights, inputs)
    desc = {
        "input.video": "video in [-1, 1] [B, 5, 32, 32, 3]; encoded in chunks of 1, 4 frames",
        "input.decode_latents": "raw latents [1, 3, 4, 4, z_dim] as the decoder takes them (post_quant_conv input)",
        "input.decode_latents_normalized": "the same latents normalised, (z - latents_mean) / latents_std",
        "output.encode_moments": "quant_conv output [B, 2, 4, 4, 2*z_dim]: mean channels, then log-variance",
        "output.encode_latents": "(mean - latents_mean) / latents_std [B, 2, 4, 4, z_dim]: what the transformer sees",
        "output.decode": "decode(input.decode_latents) clamped to [-1, 1] [1, 9, 32, 32, 3]",
        "output_bf16.*": "the same under bf16 autocast on the GPU",
    }
    return tensors, c, desc


def make_umt5(run: Run, seed: int):
    c = UMT5_CONFIG
    rng = np.random.default_rng([seed, 3])

    def std_for(name, shape):
        if name == "shared.weight" or name.endswith("relative_attention_bias.weight"):
            return "normal", 1.0
        if name.endswith("SelfAttention.q.weight"):
            # No 1/sqrt(d_kv) in umT5's attention: T5's init folds it into q.
            return "normal", 1.0 / math.sqrt(c["d_model"] * c["d_kv"])
        return default_std(name, shape)

    weights = random_weights(UMT5Encoder(c), rng, std_for)
    length = 20
    lengths = [20, 9]
    ids = np.zeros((2, length), dtype=np.int32)
    mask = np.zeros((2, length), dtype=np.int32)
    for i, n in enumerate(lengths):
        ids[i, : n - 1] = rng.integers(2, c["vocab_size"], n - 1)
        ids[i, n - 1] = c["eos_token_id"]
        mask[i, :n] = 1
    inputs = {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
        "lengths": torch.tensor(lengths, dtype=torch.int32),
    }

    def fn(m: UMT5Encoder, x):
        return {"last_hidden_state": m(x["input_ids"].long(), x["attention_mask"])}

    ref, bf16 = run("umt5", lambda: UMT5Encoder(c), weights, inputs, fn)
    tensors = dict(weights)
    tensors.update({f"input.{k}": v for k, v in inputs.items()})
    tensors["output.last_hidden_state"] = f32(ref["last_hidden_state"])
    if bf16:
        tensors["output_bf16.last_hidden_state"] = f32(bf16["last_hidden_state"])
    # umT5-XXL's own bucketing (32 buckets, distance 128), computed by torch in float32,
    # for offsets where float32 rounding of the log decides the bucket (±16, ±32, ±64).
    rel = torch.arange(-200, 201)
    tensors["output.rel_buckets_xxl"] = relative_position_bucket(rel, 32, 128, True).to(torch.int32)
    desc = {
        "input.input_ids": "token ids [B, L] (int32), eos (1) ends each sequence, padding 0 after",
        "input.attention_mask": "1 for tokens, 0 for padding [B, L] (int32)",
        "input.lengths": "tokens per sequence [B] (int32)",
        "output.last_hidden_state": "encoder output [B, L, d_model]; rows past lengths[b] are HF's values "
        "for padding queries (Wan zeroes them): compare rows < lengths[b]",
        "output_bf16.last_hidden_state": "the same under bf16 autocast on the GPU",
        "output.rel_buckets_xxl": "bucket of rel = key - query for rel = -200..200, bidirectional, "
        "32 buckets, max_distance 128 (int32)",
    }
    return tensors, c, desc


# Whole text-to-video runs on the golden transformer: latents after a few steps from
# Tessera's noise for `seed` and given prompt embeddings, guidance on, per sampler as
# Wan configures it in diffusers. Sizes give latents [1, 3, 4, 6, 16] (18 tokens).
PIPELINE_TEXT_LENGTH = 16
PIPELINE_CASES = [
    {"name": "t2v_unipc", "scheduler": "unipc", "shift": 5.0, "steps": 3, "guidance": 5.0,
     "width": 48, "height": 32, "frames": 9, "seed": 20251},
    {"name": "t2v_euler", "scheduler": "euler", "shift": 3.0, "steps": 3, "guidance": 4.0,
     "width": 48, "height": 32, "frames": 9, "seed": 20252},
]  # fmt: skip


def make_pipeline(run: Run, seed: int, transformer_path: str):
    """Latents of whole guided runs (see PIPELINE_CASES) on the weights of `transformer_path`
    (the golden transformer fixture; its sha256 goes into the metadata)."""
    tensors_in, meta_in = read_safetensors(transformer_path)
    with open(transformer_path, "rb") as fh:
        base_sha = hashlib.sha256(fh.read()).hexdigest()
    c = json.loads(meta_in["config"])
    weights = {k: v for k, v in tensors_in.items() if not k.startswith(("input.", "output.", "output_bf16.", "inter."))}
    rng = np.random.default_rng([seed, 4])
    # Wan's text states: the prompt's rows, then zeros up to the text length (diffusers'
    # _get_t5_prompt_embeds pads the same way). 9 and 5 real tokens of 16.
    embeds = {}
    for name, n in (("prompt_embeds", 9), ("negative_prompt_embeds", 5)):
        e = np.zeros((1, PIPELINE_TEXT_LENGTH, c["text_dim"]), dtype=np.float32)
        e[0, :n] = f32(rng.standard_normal((n, c["text_dim"])))
        embeds[name] = e
    tensors = {f"input.{k}": v for k, v in embeds.items()}
    desc = {
        "input.prompt_embeds": "text states [1, 16, text_dim]: 9 rows, then zero padding (as Wan pads)",
        "input.negative_prompt_embeds": "text states [1, 16, text_dim]: 5 rows, then zero padding",
    }
    model = load(WanTransformer(c), weights, torch.float64, run.device)
    ctx = torch.from_numpy(embeds["prompt_embeds"]).double().to(run.device)
    neg = torch.from_numpy(embeds["negative_prompt_embeds"]).double().to(run.device)

    def velocity(x, t, context):
        return model(x, t, context)

    for case in PIPELINE_CASES:
        lat = (1, (case["frames"] - 1) // 4 + 1, case["height"] // 8, case["width"] // 8, c["in_channels"])
        noise = tessera_randn(lat, case["seed"])
        steps_out = []
        x = sample_guided(
            velocity,
            channels_first(torch.from_numpy(noise).double().to(run.device)),
            ctx,
            neg,
            case["guidance"],
            case["scheduler"],
            case["steps"],
            case["shift"],
            callback=lambda i, x: steps_out.append(channels_last(x).cpu()),
        )
        n = case["name"]
        tensors[f"input.{n}.noise"] = noise
        for i, s in enumerate(steps_out[:-1]):
            tensors[f"output.{n}.step_{i}"] = f32(s)
        tensors[f"output.{n}.latents"] = f32(channels_last(x).cpu())
        print(f"  {n}: latents |x| {float(x.abs().mean()):.3f}")
        desc[f"input.{n}.noise"] = f"Tessera's randn(shape, {{seed: {case['seed']}}}) [1, F, H, W, C] (tessera_ref/rng.py)"
        desc[f"output.{n}.step_K"] = "latents after step K + 1 (before the last) [1, F, H, W, C]"
        desc[f"output.{n}.latents"] = f"latents after all {case['steps']} steps (σ = 0) [1, F, H, W, C]"
    extra = {
        "base_sha256": base_sha,
        "base": "wan_transformer.safetensors",
        "cases": json.dumps(PIPELINE_CASES),
        "text_length": str(PIPELINE_TEXT_LENGTH),
    }
    return tensors, c, desc, extra


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20250)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--only", nargs="*", default=["wan_transformer", "wan_vae", "umt5", "wan_pipeline"])
    ap.add_argument(
        "--golden",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "packages", "core", "test-fixtures", "golden"),
        help="where wan_pipeline reads wan_transformer.safetensors when this run did not write one to --out",
    )
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    run = Run(args.device)
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else None
    def pipeline(run, seed):
        made = os.path.join(args.out, "wan_transformer.safetensors")
        return make_pipeline(run, seed, made if "wan_transformer" in args.only else os.path.join(args.golden, "wan_transformer.safetensors"))

    makers = {"wan_transformer": make_transformer, "wan_vae": make_vae, "umt5": make_umt5, "wan_pipeline": pipeline}
    total = 0
    for name in args.only:
        t0 = time.time()
        print(f"{name}:")
        made = makers[name](run, args.seed)
        tensors, config, desc = made[:3]
        extra = made[3] if len(made) > 3 else {}
        meta = fixture_meta(
            name,
            config,
            args.seed,
            desc,
            "make_golden.py",
            reference=f"float64 on {args.device} from the float32 weights and inputs stored here",
            bf16=bf16_note(gpu),
            layout=LAYOUT,
            extra=extra,
        )
        path = os.path.join(args.out, f"{name}.safetensors")
        size = write_safetensors(path, tensors, meta)
        total += size
        n_w = sum(1 for k in tensors if not k.split(".")[0] in ("input", "output", "output_bf16", "inter"))
        print(f"  wrote {path}: {size / 1024:.0f} KiB, {n_w} weights, {len(tensors) - n_w} other ({time.time() - t0:.1f} s)")
    print(f"total {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
