#!/usr/bin/env python3
"""Checks the golden files against the published implementations, where they can be
imported: Hugging Face transformers' UMT5EncoderModel, and diffusers'
WanTransformer3DModel and AutoencoderKLWan (from a diffusers source tree given with
--diffusers, since the GPU host has no diffusers package). Each upstream model gets
the fixture's weights (strict load: every name must match) and inputs in float64 on
the CPU, and its outputs are compared with the fixture's output.* tensors.

Usage: python3 training/check_upstream.py --golden DIR [--diffusers PATH/src]
Prints one line per comparison; exits 1 if any comparison fails its bound."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tessera_ref import read_safetensors  # noqa: E402

failures: list[str] = []


def rel(a, b) -> float:
    a = torch.as_tensor(a).double()
    b = torch.as_tensor(b).double()
    return float((a - b).norm() / b.norm())


def report(name: str, err: float, bound: float, why: str = ""):
    ok = err <= bound
    print(f"  {'ok  ' if ok else 'FAIL'} {name}: rel err {err:.2e} (bound {bound:.0e}{'; ' + why if why else ''})")
    if not ok:
        failures.append(name)


def split(path):
    t, meta = read_safetensors(path)
    weights = {k: torch.from_numpy(v).double() for k, v in t.items() if k.split(".")[0] not in ("input", "output", "output_bf16", "inter")}
    rest = {k: torch.from_numpy(v) for k, v in t.items() if k not in weights}
    return weights, rest, json.loads(meta["config"])


def ncdhw(x):
    return x.permute(0, 4, 1, 2, 3).contiguous()


def check_umt5(golden):
    from transformers import UMT5Config, UMT5EncoderModel

    w, t, c = split(os.path.join(golden, "umt5.safetensors"))
    cfg = UMT5Config(
        vocab_size=c["vocab_size"], d_model=c["d_model"], d_kv=c["d_kv"], d_ff=c["d_ff"],
        num_layers=c["num_layers"], num_heads=c["num_heads"],
        relative_attention_num_buckets=c["relative_attention_num_buckets"],
        relative_attention_max_distance=c["relative_attention_max_distance"],
        feed_forward_proj=c["feed_forward_proj"], layer_norm_epsilon=c["layer_norm_epsilon"],
        dropout_rate=0.0, pad_token_id=c["pad_token_id"], eos_token_id=c["eos_token_id"],
    )  # fmt: skip
    try:
        m = UMT5EncoderModel(cfg, attn_implementation="eager")
    except TypeError:
        m = UMT5EncoderModel(cfg)
    sd = dict(w)
    sd["encoder.embed_tokens.weight"] = sd["shared.weight"]
    missing, unexpected = m.load_state_dict(sd, strict=False)
    # The tied alias may or may not be a state-dict entry of its own, by version.
    missing = [k for k in missing if k != "encoder.embed_tokens.weight"]
    unexpected = [k for k in unexpected if k != "encoder.embed_tokens.weight"]
    print(f"  umt5: HF load: missing {missing}, unexpected {unexpected}")
    if missing or unexpected:
        failures.append("umt5 names")
    m = m.double().eval()
    ids = t["input.input_ids"].long()
    mask = t["input.attention_mask"].long()
    with torch.no_grad():
        out = m(input_ids=ids, attention_mask=mask).last_hidden_state
    ref = t["output.last_hidden_state"]
    for b, n in enumerate(t["input.lengths"].tolist()):
        report(f"umt5 last_hidden_state[{b}, :{n}] vs transformers", rel(out[b, :n], ref[b, :n]), 1e-6, "fixture stored in f32")
    report("umt5 last_hidden_state (all rows) vs transformers", rel(out, ref), 1e-6)
    attn = m.encoder.block[0].layer[0].SelfAttention
    attn.relative_attention_num_buckets, attn.relative_attention_max_distance = 32, 128
    hf = attn._relative_position_bucket(torch.arange(-200, 201))
    bad = (hf.int() != t["output.rel_buckets_xxl"]).sum().item()
    report("umt5 relative buckets (32/128) vs transformers", float(bad), 0.0, "count of differing buckets")


def check_transformer(golden):
    from diffusers import WanTransformer3DModel

    w, t, c = split(os.path.join(golden, "wan_transformer.safetensors"))
    m = WanTransformer3DModel(**{**c, "patch_size": tuple(c["patch_size"])})
    m.load_state_dict(w, strict=True)
    m = m.double().eval()
    with torch.no_grad():
        out = m(
            hidden_states=ncdhw(t["input.latents"]).double(),
            timestep=t["input.timesteps"].double(),
            encoder_hidden_states=t["input.context"].double(),
            return_dict=False,
        )[0]
    ref = ncdhw(t["output.velocity"])
    # diffusers rounds the timestep sinusoid and the RoPE table to float32 even in a
    # float64 model; the fixture is computed in float64 throughout (as the original Wan
    # code computes both), so agreement is to float32 rounding of those, not 1e-15.
    report("transformer velocity vs diffusers", rel(out, ref), 1e-5, "diffusers rounds sinusoid/RoPE to f32")


def check_vae(golden):
    from diffusers import AutoencoderKLWan

    w, t, c = split(os.path.join(golden, "wan_vae.safetensors"))
    keys = ["base_dim", "z_dim", "dim_mult", "num_res_blocks", "attn_scales", "temperal_downsample", "dropout",
            "latents_mean", "latents_std"]  # fmt: skip
    m = AutoencoderKLWan(**{k: c[k] for k in keys})
    m.load_state_dict(w, strict=True)
    m = m.double().eval()
    with torch.no_grad():
        moments = m._encode(ncdhw(t["input.video"]).double())
        dec = m.decode(ncdhw(t["input.decode_latents"]).double(), return_dict=False)[0]
    report("vae encode moments vs diffusers", rel(moments, ncdhw(t["output.encode_moments"])), 1e-6)
    report("vae decode vs diffusers", rel(dec, ncdhw(t["output.decode"])), 1e-6)


def check_a14b_schedule(golden):
    """Wan2.2 A14B's two-expert schedule through diffusers' own WanPipeline loop: the
    fixture's experts as transformer / transformer_2 with its boundary_ratio, its noise
    as latents, its text states as prompt_embeds, its sigmas given to the Euler
    scheduler; the experts each step ran and the final latents are compared."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    path = os.path.join(golden, "wan_a14b_schedule.safetensors")
    t, meta = read_safetensors(path)
    c = json.loads(meta["config"])
    experts = []
    for prefix in ("transformer", "transformer_2"):
        m = WanTransformer3DModel(**{**c, "patch_size": tuple(c["patch_size"])})
        sd = {k[len(prefix) + 1 :]: torch.from_numpy(v).double() for k, v in t.items() if k.startswith(prefix + ".")}
        m.load_state_dict(sd, strict=True)
        experts.append(m.double().eval())
    calls = []
    for i, m in enumerate(experts):
        m.register_forward_pre_hook(lambda _m, _a, kw, i=i: calls.append((i, float(kw["timestep"][0]))), with_kwargs=True)
    sched = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=float(meta["shift"]))
    sigmas = [float(x) for x in t["input.sigmas"]]
    plain = sched.set_timesteps
    # WanPipeline asks for N evenly spaced steps; the fixture's explicit list is what runs.
    sched.set_timesteps = lambda n=None, device=None, **kw: plain(sigmas=sigmas, device=device)
    pipe = WanPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=None,
        scheduler=sched,
        transformer=experts[0],
        transformer_2=experts[1],
        boundary_ratio=float(meta["boundary_ratio"]),
    )
    noise = ncdhw(t["input.noise"]).double()
    out = pipe(
        prompt_embeds=t["input.context"].double(),
        negative_prompt_embeds=t["input.negative_context"].double(),
        latents=noise,
        num_inference_steps=len(sigmas),
        guidance_scale=float(meta["guidance"]),
        guidance_scale_2=float(meta["guidance_2"]),
        height=noise.shape[3] * 8,
        width=noise.shape[4] * 8,
        num_frames=1 + 4 * (noise.shape[2] - 1),
        output_type="latent",
        return_dict=False,
    )[0]
    # One call per branch: the expert of each step is that of its first call.
    per_step = [e for j, (e, _) in enumerate(calls) if j % 2 == 0]
    want = [int(x) for x in t["output.experts"]]
    bad = sum(int(a != b) for a, b in zip(per_step, want)) + abs(len(per_step) - len(want))
    print(f"  a14b: diffusers ran experts {per_step} at timesteps {[round(ts, 2) for _, ts in calls[::2]]}")
    report("a14b expert per step vs diffusers' WanPipeline", float(bad), 0.0, "count of steps with another expert")
    report("a14b latents vs diffusers' WanPipeline", rel(out.float(), ncdhw(t["output.latents"])), 1e-4,
           "diffusers keeps latents in float32 between steps")  # fmt: skip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", required=True)
    ap.add_argument("--diffusers", help="path of a diffusers source tree's src/ folder")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    if args.diffusers:
        sys.path.insert(0, args.diffusers)
    checks = [("umt5", check_umt5)]
    if args.diffusers:
        checks += [("transformer", check_transformer), ("vae", check_vae), ("a14b", check_a14b_schedule)]
    for name, fn in checks:
        print(f"{name}:")
        try:
            fn(args.golden)
        except Exception:
            print("  ERROR:\n" + "".join("    " + line for line in traceback.format_exc().splitlines(True)[-12:]))
            failures.append(name)
    print("upstream check:", "FAILED " + ", ".join(failures) if failures else "all ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
