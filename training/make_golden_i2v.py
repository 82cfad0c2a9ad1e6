#!/usr/bin/env python3
"""Golden tensors for Wan2.1 image-to-video (I2V) and first-last-frame (FLF2V).

Writes, next to make_golden.py's fixtures (same format, tessera-golden/1):
  clip_vision.safetensors       a tiny CLIP vision tower (HF CLIPVisionModel names):
                                the preprocessing of i2v_image.png (CLIPImageProcessor,
                                PIL bicubic) and hidden_states[-2] of it, with "gelu"
                                and, from the same weights, "quick_gelu";
  wan_i2v_transformer.safetensors   a tiny I2V transformer forward (36 input channels:
                                latents, then the condition; CLIP image states);
  wan_flf2v_transformer.safetensors the same with pos_embed_seq_len (two images' tokens);
  wan_i2v_pipeline.safetensors  whole pipeline runs, no weights of its own (it names the
                                fixtures it takes them from): latents after 3 Euler steps
                                with guidance, from the engine's own noise for a seed,
                                given prompt embeddings and i2v_image.png as the start
                                image (and, for FLF2V, the image mirrored as the end);
  wan_i2v_a14b_pipeline.safetensors Wan2.2 I2V-A14B: two tiny experts taking the same
                                36-channel condition without CLIP (image_dim null, one
                                layer each, their weights stored here), latents after 4
                                guided Euler steps that cross boundary_ratio 0.9 (two
                                per expert, each with its own guidance), from the
                                image (and, second run, the image mirrored as the end);
and i2v_image.png itself (48×32 RGB), when it is not there yet.

The transformer fixtures' text is 512 tokens: diffusers splits image from text tokens
by "everything but the last 512", so check_upstream.py can feed diffusers the same.

With a GPU, output_bf16.* hold the float32 models under bf16 autocast (as make_golden.py).

Usage: python3 training/make_golden_i2v.py --out packages/core/test-fixtures/golden [--seed N] [--only i2v_a14b]
Run after make_golden.py (the pipeline reuses wan_vae.safetensors' weights, which it
regenerates and compares)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from make_golden import LAYOUT, TRANSFORMER_CONFIG, VAE_CONFIG, bf16_note, channels_first, channels_last, default_std, f32, fixture_meta, load, random_weights  # noqa: E402
from tessera_ref import ClipVisionModel, WanTransformer, WanVAE, expert_at, read_safetensors, tessera_randn, write_safetensors  # noqa: E402
from tessera_ref.clip_vision import image_processor_config, preprocess  # noqa: E402

# CLIP_VISION_TINY in packages/core/src/models/clip/config.ts.
CLIP_CONFIG = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 2,
    "num_hidden_layers": 3,
    "patch_size": 4,
    "image_size": 16,
    "num_channels": 3,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
}
PROCESSOR = image_processor_config(16)

# WAN_I2V_TINY in packages/core/src/models/wan/config.ts.
I2V_CONFIG = {**TRANSFORMER_CONFIG, "in_channels": 36, "image_dim": 32, "added_kv_proj_dim": 48, "pos_embed_seq_len": None}
FLF2V_CONFIG = {**I2V_CONFIG, "pos_embed_seq_len": 34}
TEXT_LEN = 512

# The pipeline runs.
PIPE = {
    "width": 48,
    "height": 32,
    "frames": 5,
    "seed": 1234,
    "sigmas": [1.0, 0.75, 0.5],
    "shift": 3.0,
    "guidance": 2.5,
    "text_length": 16,
}

# Wan2.2 I2V-A14B: each expert the I2V geometry without CLIP (image_dim null), one layer
# to keep the fixture small. Shifted, the sigmas give t ≈ 1000, 923, 750, 563: two steps
# per expert at diffusers' boundary_ratio 0.9 (Wan2.2 I2V-A14B's).
I2V_A14B_CONFIG = {**TRANSFORMER_CONFIG, "in_channels": 36, "num_layers": 1}
PIPE_A14B = {
    **PIPE,
    "sigmas": [1.0, 0.8, 0.5, 0.3],
    "boundary_ratio": 0.9,
    "guidance": 3.5,
    "guidance_2": 2.0,
}


def variants():
    """(dtype, device, autocast) runs: the float64 reference on the CPU, and with a GPU the
    float32 model under bf16 autocast (what output_bf16.* holds, as make_golden.py)."""
    out = [(torch.float64, "cpu", False)]
    if torch.cuda.is_available():
        out.append((torch.float32, "cuda", True))
    return out


def autocast(on: bool):
    import contextlib

    return torch.autocast("cuda", dtype=torch.bfloat16) if on else contextlib.nullcontext()


def meta_for(name, config, desc, seed, extra=None):
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return fixture_meta(
        name,
        config,
        seed,
        desc,
        "make_golden_i2v.py",
        reference="float64 on cpu from the float32 weights and inputs stored here",
        bf16=bf16_note(gpu),
        layout=LAYOUT,
        extra=extra,
    )


def write_png(path: str, seed: int):
    """A 48×32 image with structure at several scales (gradients, a disc, noise)."""
    from PIL import Image

    rng = np.random.default_rng([seed, 50])
    y, x = np.mgrid[0:32, 0:48].astype(np.float64)
    r = 255 * x / 47
    g = 255 * (0.5 + 0.5 * np.sin(y / 3.0))
    b = np.where((x - 30) ** 2 + (y - 14) ** 2 < 81, 230.0, 40.0)
    a = np.stack([r, g, b], -1) + rng.normal(0, 12, (32, 48, 3))
    Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "RGB").save(path)


def clip_weights(seed):
    return random_weights(ClipVisionModel(CLIP_CONFIG), np.random.default_rng([seed, 40]), default_std)


def wan_std(name, shape):
    if name.endswith("scale_shift_table"):
        return "normal", 1.0 / math.sqrt(shape[-1])
    if name.endswith("pos_embed"):
        return "normal", 0.5
    return default_std(name, shape)


def transformer_weights(config, stream, seed):
    return random_weights(WanTransformer(config), np.random.default_rng([seed, stream]), wan_std)


def vae_weights(seed):
    def std_for(name, shape):  # as make_golden.make_vae
        kind, std = default_std(name, shape)
        if name == "decoder.conv_out.weight":
            std *= 0.5
        return kind, std

    return random_weights(WanVAE(VAE_CONFIG), np.random.default_rng([seed, 2]), std_for)


def to64(weights):
    return {k: torch.from_numpy(v).double() for k, v in weights.items()}


def make_clip(out, seed, png):
    from PIL import Image

    weights = clip_weights(seed)
    img = Image.open(png)
    pixels = preprocess(img, PROCESSOR)  # [3, S, S] float32
    tensors = dict(weights)
    tensors["output.pixel_values"] = f32(pixels.transpose(1, 2, 0)[None])
    for dt, dev, ac in variants():
        m = load(ClipVisionModel(CLIP_CONFIG), weights, dt, dev)
        mq = load(ClipVisionModel({**CLIP_CONFIG, "hidden_act": "quick_gelu"}), weights, dt, dev)
        px = torch.from_numpy(pixels)[None].to(dev, dt)
        with torch.no_grad(), autocast(ac):
            hs = m.hidden_states(px)
            pen_q = mq(px)
        pre = "output_bf16" if ac else "output"
        tensors[f"{pre}.penultimate"] = f32(hs[-2].float().cpu())
        tensors[f"{pre}.penultimate_quick_gelu"] = f32(pen_q.float().cpu())
        tensors[f"{pre}.last_hidden_state_prenorm"] = f32(hs[-1].float().cpu())
    desc = {
        "output.pixel_values": "CLIPImageProcessor(i2v_image.png) channels-last [1, S, S, 3]",
        "output.penultimate": "hidden_states[-2] [1, tokens, hidden] (class token first): what Wan takes",
        "output.penultimate_quick_gelu": "the same weights with hidden_act quick_gelu",
        "output.last_hidden_state_prenorm": "hidden_states[-1] (after every layer, before post_layernorm)",
    }
    extra = {"image": "i2v_image.png", "image_processor": json.dumps(PROCESSOR)}
    path = os.path.join(out, "clip_vision.safetensors")
    size = write_safetensors(path, tensors, meta_for("clip_vision", CLIP_CONFIG, desc, seed, extra))
    print(f"  wrote {path}: {size / 1024:.0f} KiB")
    return weights


def make_transformer(out, name, config, stream, seed, image_tokens):
    rng = np.random.default_rng([seed, stream + 100])
    weights = transformer_weights(config, stream, seed)
    b, f, h, w = 1, 3, 4, 6
    latents = f32(rng.standard_normal((b, f, h, w, 16)))
    condition = f32(rng.standard_normal((b, f, h, w, config["in_channels"] - 16)))
    context = f32(rng.standard_normal((b, TEXT_LEN, config["text_dim"])))
    image = f32(rng.standard_normal((b, image_tokens, config["image_dim"])))
    timesteps = np.array([612.5], dtype=np.float32)
    outs = {}
    for dt, dev, ac in variants():
        m = load(WanTransformer(config), weights, dt, dev)
        inter = {}
        hk = m.condition_embedder.image_embedder.register_forward_hook(lambda _m, _i, o: inter.__setitem__("image_tokens", o))
        to = lambda a: torch.from_numpy(a).to(dev, dt)  # noqa: E731
        with torch.no_grad(), autocast(ac):
            x = torch.cat([channels_first(to(latents)), channels_first(to(condition))], 1)
            outs[ac] = (m(x, to(timesteps), to(context), to(image)).float().cpu(), inter["image_tokens"].float().cpu())
        hk.remove()
    y, image_tokens = outs[False]
    tensors = dict(weights)
    tensors.update({"input.latents": latents, "input.condition": condition, "input.context": context,
                    "input.image": image, "input.timesteps": timesteps})  # fmt: skip
    tensors["output.velocity"] = f32(channels_last(y))
    tensors["inter.image_tokens"] = f32(image_tokens)
    if True in outs:
        tensors["output_bf16.velocity"] = f32(channels_last(outs[True][0]))
    desc = {
        "input.latents": "noisy latents [B, F, H, W, 16]",
        "input.condition": "the channels after them (mask 4, conditioning latents 16) [B, F, H, W, 20]",
        "input.context": f"text states [B, {TEXT_LEN}, text_dim]",
        "input.image": "CLIP image states [B, Li, image_dim] (FLF2V: first image's tokens, then the last's)",
        "input.timesteps": "[B]",
        "output.velocity": "forward(concat(latents, condition), t, context, image) [B, F, H, W, 16]",
        "inter.image_tokens": "condition_embedder.image_embedder(image) [B, Li, dim]",
    }
    path = os.path.join(out, f"{name}.safetensors")
    size = write_safetensors(path, tensors, meta_for(name, config, desc, seed))
    print(f"  wrote {path}: {size / 1024:.0f} KiB")
    return weights


def f32r(x):
    return float(np.float32(x))


def euler_schedule(sigmas, shift):
    """FlowMatchEulerScheduler.setExplicit with sigmas (float32 steps, as the engine)."""
    sig = [f32r(f32r(f32r(shift) * f32r(s)) / f32r(1 + f32r(f32r(shift - 1) * f32r(s)))) for s in sigmas]
    return sig + [0.0], [f32r(s * 1000) for s in sig]


def image_condition(vae, first, last, dt, dev):
    """diffusers' prepare_latents for Wan I2V (expand_timesteps false): the mask of the
    known frames (4 channels) and the normalised VAE latents of the conditioning video
    (the image, zeros, for FLF2V the last image), [1, 20, F, h, w]."""
    P = PIPE
    H, W, T = P["height"], P["width"], P["frames"]
    fl, h, w = (T - 1) // 4 + 1, H // 8, W // 8
    px = lambda im: torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float64) / 127.5 - 1.0).permute(2, 0, 1)  # noqa: E731
    video = torch.zeros(1, 3, T, H, W, dtype=dt, device=dev)
    video[0, :, 0] = px(first)
    if last is not None:
        video[0, :, -1] = px(last)
    moments = vae.encode(video)
    cond_lat = vae.normalize_latents(moments[:, :16])
    mask = torch.zeros(1, 4, fl, h, w, dtype=dt, device=dev)
    # diffusers: the first pixel frame's mask ×4, then one per frame, as [4, latent frames].
    frames = torch.zeros(T)
    frames[0] = 1
    if last is not None:
        frames[-1] = 1
    seq = torch.cat([frames[:1].repeat(4), frames[1:]])  # 4·fl entries
    mask[:] = seq.view(fl, 4).t()[None, :, :, None, None].to(dev, dt)
    return torch.cat([mask, cond_lat.to(dt)], 1)


def pipeline_run(seed, clip, trans_cfg, trans_w, vae, first, last, ctx, neg, dt=torch.float64, dev="cpu", ac=False):
    """The Wan image-to-video pipeline (diffusers' WanImageToVideoPipeline, Euler, given
    prompt embeddings, the engine's noise) in float64 (or, with `ac`, float32 models under
    bf16 autocast). Returns latents and intermediates."""
    P = PIPE
    H, W, T = P["height"], P["width"], P["frames"]
    fl, h, w = (T - 1) // 4 + 1, H // 8, W // 8
    with torch.no_grad(), autocast(ac):
        imgs = [first] + ([last] if last is not None else [])
        states = [clip(torch.from_numpy(preprocess(im, PROCESSOR))[None].to(dev, dt)) for im in imgs]
        image_states = torch.cat(states, 1)  # FLF2V: [1, 2·tokens, dim]
        condition = image_condition(vae, first, last, dt, dev)
        noise = tessera_randn([1, fl, h, w, 16], seed)
        x = channels_first(torch.from_numpy(noise)).to(dev, dt)
        sig, ts = euler_schedule(P["sigmas"], P["shift"])
        g = P["guidance"]
        for i, t in enumerate(ts):
            inp = torch.cat([x, condition], 1)
            tt = torch.tensor([t], dtype=dt, device=dev)
            vc = trans_w(inp, tt, ctx, image_states).to(dt)
            vu = trans_w(inp, tt, neg, image_states).to(dt)
            v = vu + g * (vc - vu)
            x = x + (sig[i + 1] - sig[i]) * v
    return {
        "latents": channels_last(x.float().cpu()),
        "image_states": image_states.float().cpu(),
        "condition": channels_last(condition.float().cpu()),
        "noise": torch.from_numpy(noise),
    }


def pipeline_run_a14b(seed, experts, vae, first, last, ctx, neg, dt=torch.float64, dev="cpu", ac=False):
    """WanImageToVideoPipeline as it runs Wan2.2 I2V-A14B: no image encoder (the
    transformers get no image states), the same condition for both experts, step i on
    experts[t_i < boundary_ratio·1000] with that expert's guidance. Returns the latents
    and the expert of each step."""
    P = PIPE_A14B
    H, W, T = P["height"], P["width"], P["frames"]
    fl, h, w = (T - 1) // 4 + 1, H // 8, W // 8
    boundary = P["boundary_ratio"] * 1000
    chosen = []
    with torch.no_grad(), autocast(ac):
        condition = image_condition(vae, first, last, dt, dev)
        x = channels_first(torch.from_numpy(tessera_randn([1, fl, h, w, 16], seed))).to(dev, dt)
        sig, ts = euler_schedule(P["sigmas"], P["shift"])
        for i, t in enumerate(ts):
            e = expert_at(t, boundary)
            chosen.append(e)
            g = P["guidance"] if e == 0 else P["guidance_2"]
            inp = torch.cat([x, condition], 1)
            tt = torch.tensor([t], dtype=dt, device=dev)
            vc = experts[e](inp, tt, ctx).to(dt)
            vu = experts[e](inp, tt, neg).to(dt)
            v = vu + g * (vc - vu)
            x = x + (sig[i + 1] - sig[i]) * v
    return {
        "latents": channels_last(x.float().cpu()),
        "condition": channels_last(condition.float().cpu()),
        "experts": chosen,
        "noise": torch.from_numpy(tessera_randn([1, fl, h, w, 16], seed)),
    }


def make_pipeline(out, seed, png, clip_w, i2v_w, flf2v_w):
    from PIL import Image

    vw = vae_weights(seed)
    stored, _ = read_safetensors(os.path.join(out, "wan_vae.safetensors"))
    for k, v in vw.items():
        if not np.array_equal(stored[k], v):
            raise SystemExit(f"wan_vae.safetensors' {k} is not what seed {seed} gives: run make_golden.py first")

    rng = np.random.default_rng([seed, 60])
    L, D = PIPE["text_length"], I2V_CONFIG["text_dim"]
    ctx = f32(rng.standard_normal((1, L, D)))
    neg = f32(rng.standard_normal((1, L, D)))

    first = Image.open(png).convert("RGB")
    last = first.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    tensors = {"input.prompt_embeds": ctx, "input.negative_prompt_embeds": neg}
    for name, cfg, w, end in [("i2v", I2V_CONFIG, i2v_w, None), ("flf2v", FLF2V_CONFIG, flf2v_w, last)]:
        for dt, dev, ac in variants():
            vae = load(WanVAE(VAE_CONFIG), vw, dt, dev)
            clip = load(ClipVisionModel(CLIP_CONFIG), clip_w, dt, dev)
            m = load(WanTransformer(cfg), w, dt, dev)
            c, n = torch.from_numpy(ctx).to(dev, dt), torch.from_numpy(neg).to(dev, dt)
            rr = pipeline_run(PIPE["seed"], clip, cfg, m, vae, first, end, c, n, dt, dev, ac)
            if ac:
                tensors[f"output_bf16.latents_{name}"] = f32(rr["latents"])
            else:
                r = rr
        tensors[f"output.latents_{name}"] = f32(r["latents"])
        tensors[f"inter.image_states_{name}"] = f32(r["image_states"])
        tensors[f"inter.condition_{name}"] = f32(r["condition"])
        print(f"  pipeline {name}: |latents| {float(r['latents'].norm()):.3f}")
    tensors["inter.noise"] = f32(r["noise"])
    desc = {
        "input.prompt_embeds": "text states of the prompt [1, text_length, text_dim]",
        "input.negative_prompt_embeds": "text states of the negative prompt",
        "output.latents_i2v": "final latents [1, F, h, w, 16]: i2v_image.png as the first frame",
        "output.latents_flf2v": "the same for FLF2V: i2v_image.png first, mirrored left-right last",
        "inter.image_states_*": "CLIP hidden_states[-2] the transformer took [1, Li, 32]",
        "inter.condition_*": "mask (4) and normalised VAE latents of the conditioning video (16) [1, F, h, w, 20]",
        "inter.noise": "the engine's randn([1, F, h, w, 16], seed): the starting latents",
    }
    extra = {
        "pipeline": json.dumps(PIPE),
        "weights_from": json.dumps({
            "image_encoder": "clip_vision.safetensors",
            "transformer_i2v": "wan_i2v_transformer.safetensors",
            "transformer_flf2v": "wan_flf2v_transformer.safetensors",
            "vae": "wan_vae.safetensors",
        }),
        "image": "i2v_image.png",
        "image_processor": json.dumps(PROCESSOR),
    }
    path = os.path.join(out, "wan_i2v_pipeline.safetensors")
    size = write_safetensors(path, tensors, meta_for("wan_i2v_pipeline", {"i2v": I2V_CONFIG, "flf2v": FLF2V_CONFIG, "image_encoder": CLIP_CONFIG, "vae": VAE_CONFIG}, desc, seed, extra))
    print(f"  wrote {path}: {size / 1024:.0f} KiB")


def make_pipeline_a14b(out, seed, png):
    from PIL import Image

    vw = vae_weights(seed)
    stored, _ = read_safetensors(os.path.join(out, "wan_vae.safetensors"))
    for k, v in vw.items():
        if not np.array_equal(stored[k], v):
            raise SystemExit(f"wan_vae.safetensors' {k} is not what seed {seed} gives: run make_golden.py first")
    experts_w = [transformer_weights(I2V_A14B_CONFIG, 43 + i, seed) for i in range(2)]
    rng = np.random.default_rng([seed, 61])
    L, D = PIPE_A14B["text_length"], I2V_A14B_CONFIG["text_dim"]
    ctx = f32(rng.standard_normal((1, L, D)))
    neg = f32(rng.standard_normal((1, L, D)))
    first = Image.open(png).convert("RGB")
    last = first.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    tensors: dict[str, np.ndarray] = {}
    for prefix, w in zip(("transformer", "transformer_2"), experts_w):
        tensors.update({f"{prefix}.{k}": v for k, v in w.items()})
    tensors["input.prompt_embeds"] = ctx
    tensors["input.negative_prompt_embeds"] = neg
    for name, end in [("i2v", None), ("flf", last)]:
        for dt, dev, ac in variants():
            vae = load(WanVAE(VAE_CONFIG), vw, dt, dev)
            models = [load(WanTransformer(I2V_A14B_CONFIG), w, dt, dev) for w in experts_w]
            c, n = torch.from_numpy(ctx).to(dev, dt), torch.from_numpy(neg).to(dev, dt)
            rr = pipeline_run_a14b(PIPE_A14B["seed"], models, vae, first, end, c, n, dt, dev, ac)
            if ac:
                tensors[f"output_bf16.latents_{name}"] = f32(rr["latents"])
            else:
                r = rr
        assert r["experts"] == [0, 0, 1, 1], f"the schedule should cross the boundary mid-way, got {r['experts']}"
        tensors[f"output.latents_{name}"] = f32(r["latents"])
        tensors[f"inter.condition_{name}"] = f32(r["condition"])
        print(f"  pipeline {name}: experts {r['experts']}, |latents| {float(r['latents'].norm()):.3f}")
    tensors["output.experts"] = np.array(r["experts"], dtype=np.int32)
    tensors["inter.noise"] = f32(r["noise"])
    desc = {
        "transformer.*": "the first (high-noise) expert, diffusers names (in_channels 36, no image_dim)",
        "transformer_2.*": "the second (low-noise) expert",
        "input.prompt_embeds": "text states of the prompt [1, text_length, text_dim]",
        "input.negative_prompt_embeds": "text states of the negative prompt",
        "output.latents_i2v": "final latents [1, F, h, w, 16]: i2v_image.png as the first frame",
        "output.latents_flf": "the same with i2v_image.png mirrored left-right as the last frame too",
        "output.experts": "the expert of each step: 0 at t >= boundary_ratio x 1000, else 1 (int32)",
        "inter.condition_*": "mask (4) and normalised VAE latents of the conditioning video (16) [1, F, h, w, 20]",
        "inter.noise": "the engine's randn([1, F, h, w, 16], seed): the starting latents",
    }
    extra = {
        "pipeline": json.dumps(PIPE_A14B),
        "weights_from": json.dumps({"vae": "wan_vae.safetensors"}),
        "image": "i2v_image.png",
    }
    path = os.path.join(out, "wan_i2v_a14b_pipeline.safetensors")
    meta = meta_for("wan_i2v_a14b_pipeline", {"transformer": I2V_A14B_CONFIG, "vae": VAE_CONFIG}, desc, seed, extra)
    size = write_safetensors(path, tensors, meta)
    print(f"  wrote {path}: {size / 1024:.0f} KiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20250)
    ap.add_argument("--only", choices=["i2v_a14b"], help="write only this fixture (the others untouched)")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True, warn_only=True)
    png = os.path.join(args.out, "i2v_image.png")
    if not os.path.exists(png):
        write_png(png, args.seed)
    if args.only != "i2v_a14b":
        print("clip_vision:")
        clip_w = make_clip(args.out, args.seed, png)
        tokens = (CLIP_CONFIG["image_size"] // CLIP_CONFIG["patch_size"]) ** 2 + 1
        print("wan_i2v_transformer:")
        i2v_w = make_transformer(args.out, "wan_i2v_transformer", I2V_CONFIG, 41, args.seed, tokens)
        print("wan_flf2v_transformer:")
        flf2v_w = make_transformer(args.out, "wan_flf2v_transformer", FLF2V_CONFIG, 42, args.seed, 2 * tokens)
        print("wan_i2v_pipeline:")
        make_pipeline(args.out, args.seed, png, clip_w, i2v_w, flf2v_w)
    print("wan_i2v_a14b_pipeline:")
    make_pipeline_a14b(args.out, args.seed, png)


if __name__ == "__main__":
    main()
