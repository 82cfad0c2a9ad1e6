#!/usr/bin/env python3
"""Checks the golden files against the published implementations, where they can be
imported: Hugging Face transformers' UMT5EncoderModel, and diffusers'
WanTransformer3DModel, AutoencoderKLWan and the T2V pipeline runs (WanPipeline with its
UniPCMultistepScheduler / FlowMatchEulerDiscreteScheduler) (from a diffusers source tree
given with --diffusers, since the GPU host has no diffusers package); for Wan2.1
image-to-video, transformers' CLIPImageProcessor and CLIPVisionModel (the image encoder
from the image file) and diffusers' WanTransformer3DModel with image_dim /
added_kv_proj_dim / pos_embed_seq_len (the I2V and FLF2V fixtures of make_golden_i2v.py);
for Wan2.2 I2V-A14B, diffusers' WanImageToVideoPipeline with transformer_2 and
boundary_ratio and no image encoder (wan_i2v_a14b_pipeline).
Each upstream model gets
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


def diffusers_wan(weights, config):
    """diffusers' WanTransformer3DModel with a fixture's config and weights, in float64
    for inference: how every check here builds the upstream model."""
    from diffusers import WanTransformer3DModel

    m = WanTransformer3DModel(**{**config, "patch_size": tuple(config["patch_size"])})
    m.load_state_dict(weights, strict=True)
    return m.double().eval()


def diffusers_experts(t, config):
    """The two experts of a two-expert fixture (transformer.*, transformer_2.*)."""
    return [
        diffusers_wan({k[len(prefix) + 1 :]: v.double() for k, v in t.items() if k.startswith(prefix + ".")}, config)
        for prefix in ("transformer", "transformer_2")
    ]


def guided(m, inp, tt, pos, neg, g):
    """One classifier-free-guided velocity as diffusers' Wan pipelines take it: the
    unconditional prediction plus g times the conditional one's difference from it."""
    v = m(hidden_states=inp, timestep=tt, encoder_hidden_states=pos, return_dict=False)[0]
    vn = m(hidden_states=inp, timestep=tt, encoder_hidden_states=neg, return_dict=False)[0]
    return vn + g * (v - vn)


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
    w, t, c = split(os.path.join(golden, "wan_transformer.safetensors"))
    m = diffusers_wan(w, c)
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


def check_clip(golden):
    """clip_vision.safetensors against transformers' CLIPImageProcessor and CLIPVisionModel."""
    from PIL import Image
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    w, t, c = split(os.path.join(golden, "clip_vision.safetensors"))
    _, meta = read_safetensors(os.path.join(golden, "clip_vision.safetensors"))
    cfg_p = {k: v for k, v in json.loads(meta["image_processor"]).items() if k != "image_processor_type"}
    # The PIL processor (what diffusers' Wan pipelines load from image_processor/).
    proc = CLIPImageProcessor(**cfg_p)
    px = proc(images=Image.open(os.path.join(golden, meta["image"])), return_tensors="pt").pixel_values
    report("clip preprocessing vs CLIPImageProcessor", rel(px.permute(0, 2, 3, 1), t["output.pixel_values"]), 1e-7)
    for act, ref in [("gelu", "output.penultimate"), ("quick_gelu", "output.penultimate_quick_gelu")]:
        cfg = CLIPVisionConfig(**{**c, "hidden_act": act})
        try:
            m = CLIPVisionModel(cfg, attn_implementation="eager")
        except TypeError:
            m = CLIPVisionModel(cfg)
        missing, unexpected = m.load_state_dict(w, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            print(f"  clip: HF load: missing {missing}, unexpected {unexpected}")
            failures.append("clip names")
        m = m.double().eval()
        with torch.no_grad():
            hs = m(pixel_values=px.double(), output_hidden_states=True).hidden_states
        report(f"clip hidden_states[-2] ({act}) vs transformers", rel(hs[-2], t[ref]), 1e-6)
        if act == "gelu":
            report("clip hidden_states[-1] vs transformers", rel(hs[-1], t["output.last_hidden_state_prenorm"]), 1e-6)


def check_i2v_transformer(golden, name):
    """wan_i2v_transformer / wan_flf2v_transformer against diffusers' WanTransformer3DModel."""
    w, t, c = split(os.path.join(golden, f"{name}.safetensors"))
    m = diffusers_wan(w, c)
    image = t["input.image"].double()
    if c.get("pos_embed_seq_len"):
        # diffusers takes FLF2V's two images along the batch ([2B, tokens, dim]) and joins them.
        b, li, d = image.shape
        image = image.reshape(b * 2, li // 2, d)
    x = torch.cat([ncdhw(t["input.latents"]), ncdhw(t["input.condition"])], 1).double()
    with torch.no_grad():
        out = m(
            hidden_states=x,
            timestep=t["input.timesteps"].double(),
            # 512 text tokens: diffusers takes everything before the last 512 as image tokens.
            encoder_hidden_states=t["input.context"].double(),
            encoder_hidden_states_image=image,
            return_dict=False,
        )[0]
    report(f"{name} velocity vs diffusers", rel(out, ncdhw(t["output.velocity"])), 1e-5, "diffusers rounds sinusoid/RoPE to f32")


def _wan_schedulers(case):
    """The scheduler diffusers' Wan pipelines run for a golden case, configured as Wan's
    model folders (and diffusers' docs) configure it."""
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if case["scheduler"] == "unipc":
        return UniPCMultistepScheduler(
            num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True,
            flow_shift=case["shift"], solver_order=2, solver_type="bh2", predict_x0=True,
            lower_order_final=True, final_sigmas_type="zero",
        )  # fmt: skip
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=case["shift"])


def check_pipeline(golden):
    """wan_pipeline.safetensors (3-step guided runs from given noise and prompt embeddings)
    against diffusers' own WanPipeline with WanTransformer3DModel and its UniPC / Euler
    scheduler, float64 on the CPU; and the same loop written out over diffusers' scheduler,
    so a pipeline that cannot be built without a VAE or text encoder still checks the sampler."""
    from diffusers import WanPipeline

    t_all, meta = read_safetensors(os.path.join(golden, "wan_pipeline.safetensors"))
    w, _, c = split(os.path.join(golden, "wan_transformer.safetensors"))
    m = diffusers_wan(w, c)
    pos = torch.from_numpy(t_all["input.prompt_embeds"]).double()
    neg = torch.from_numpy(t_all["input.negative_prompt_embeds"]).double()
    for case in json.loads(meta["cases"]):
        n = case["name"]
        noise = ncdhw(torch.from_numpy(t_all[f"input.{n}.noise"]))
        ref = ncdhw(torch.from_numpy(t_all[f"output.{n}.latents"]))
        what = f"{case['steps']} {case['scheduler']} steps, shift {case['shift']}, guidance {case['guidance']}"
        # 1. The loop written out: diffusers' scheduler and transformer, WanPipeline's order of things.
        s = _wan_schedulers(case)
        s.set_timesteps(case["steps"])
        x = noise.clone().float()
        with torch.no_grad():
            for t in s.timesteps:
                inp = x.double()
                tt = t.expand(1)
                v = guided(m, inp, tt, pos, neg, case["guidance"])
                x = s.step(v, t, x, return_dict=False)[0]
        report(f"pipeline {n} ({what}) vs diffusers scheduler + transformer", rel(x, ref), 1e-4,
               "diffusers keeps σ in f32 and the latents in f32 between steps")  # fmt: skip
        # 2. diffusers' WanPipeline itself (no VAE, tokenizer or text encoder: embeddings in, latents out).
        try:
            pipe = WanPipeline(tokenizer=None, text_encoder=None, vae=None, scheduler=_wan_schedulers(case), transformer=m)
        except Exception as e:  # an older or newer diffusers may insist on every component
            print(f"  skip WanPipeline for {n}: cannot build it without a VAE/text encoder ({type(e).__name__}: {e})")
            continue
        out = pipe(
            prompt=None, negative_prompt=None, prompt_embeds=pos, negative_prompt_embeds=neg,
            height=case["height"], width=case["width"], num_frames=case["frames"],
            num_inference_steps=case["steps"], guidance_scale=case["guidance"],
            latents=noise.clone(), output_type="latent", return_dict=False,
        )[0]  # fmt: skip
        report(f"pipeline {n} ({what}) vs diffusers WanPipeline", rel(out, ref), 1e-4,
               "diffusers keeps σ in f32 and the latents in f32 between steps")  # fmt: skip


VAE22_KEYS = ["base_dim", "decoder_base_dim", "z_dim", "dim_mult", "num_res_blocks", "attn_scales",
              "temperal_downsample", "dropout", "latents_mean", "latents_std", "is_residual", "in_channels",
              "out_channels", "patch_size"]  # fmt: skip


def vae22(golden):
    from diffusers import AutoencoderKLWan

    w, t, c = split(os.path.join(golden, "wan22_vae.safetensors"))
    m = AutoencoderKLWan(**{k: c[k] for k in VAE22_KEYS})
    m.load_state_dict(w, strict=True)
    return m.double().eval(), t, c


def check_vae22(golden):
    """The Wan2.2 VAE fixture (is_residual, patch_size 2) against diffusers' AutoencoderKLWan."""
    m, t, _ = vae22(golden)
    with torch.no_grad():
        moments = m._encode(ncdhw(t["input.video"]).double())
        dec = m.decode(ncdhw(t["input.decode_latents"]).double(), return_dict=False)[0]
    report("wan2.2 vae encode moments vs diffusers", rel(moments, ncdhw(t["output.encode_moments"])), 1e-6)
    report("wan2.2 vae decode vs diffusers", rel(dec, ncdhw(t["output.decode"])), 1e-6)


def check_ti2v(golden):
    """The per-token-timestep forward against WanTransformer3DModel given timestep [B, seq]
    (its expand_timesteps path), and the TI2V image-to-video run against the loop of
    diffusers' WanImageToVideoPipeline with expand_timesteps (mask blend, timestep = mask·t,
    classifier-free guidance, FlowMatchEulerDiscreteScheduler from the same sigmas)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    w, t, c = split(os.path.join(golden, "wan_ti2v.safetensors"))
    p = json.loads(read_safetensors(os.path.join(golden, "wan_ti2v.safetensors"))[1]["pipeline"])
    m = diffusers_wan(w, c)
    with torch.no_grad():
        out = m(
            hidden_states=ncdhw(t["input.latents"]).double(),
            timestep=t["input.timesteps_per_token"].double(),
            encoder_hidden_states=t["input.context"].double(),
            return_dict=False,
        )[0]
    report("ti2v transformer velocity (timestep [B, seq]) vs diffusers", rel(out, ncdhw(t["output.velocity"])), 1e-5,
           "diffusers rounds sinusoid/RoPE to f32")  # fmt: skip

    vae, _, vc = vae22(golden)
    sched = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=p["shift"])
    sched.set_timesteps(sigmas=p["sigmas"])
    mean = torch.tensor(vc["latents_mean"]).view(1, -1, 1, 1, 1).double()
    inv_std = 1.0 / torch.tensor(vc["latents_std"]).view(1, -1, 1, 1, 1).double()
    with torch.no_grad():
        image = ncdhw(t["input.pipe_image"]).double()
        condition = (vae._encode(image)[:, : vc["z_dim"]] - mean) * inv_std
        latents = ncdhw(t["input.pipe_noise"]).double()
        mask = torch.ones(1, 1, *latents.shape[2:], dtype=torch.float64)
        mask[:, :, 0] = 0
        prompt = torch.cat([t["input.pipe_cond_states"], t["input.pipe_uncond_states"]]).double()
        for step in sched.timesteps:
            model_in = (1 - mask) * condition + mask * latents
            ts = (mask[0][0][:, ::2, ::2] * step).flatten().unsqueeze(0).expand(2, -1)
            cond, uncond = m(
                hidden_states=torch.cat([model_in, model_in]), timestep=ts, encoder_hidden_states=prompt,
                return_dict=False,
            )[0].chunk(2)  # fmt: skip
            noise_pred = uncond + p["guidance"] * (cond - uncond)
            latents = sched.step(noise_pred, step, latents, return_dict=False)[0]
        latents = (1 - mask) * condition + mask * latents
        video = vae.decode(latents / inv_std + mean, return_dict=False)[0]
    report("ti2v pipeline latents vs diffusers' TI2V loop", rel(latents, ncdhw(t["output.pipe_latents"])), 1e-5)
    report("ti2v pipeline video vs diffusers' TI2V loop", rel(video, ncdhw(t["output.pipe_video"])), 1e-5)


def check_a14b_schedule(golden):
    """wan_a14b_schedule.safetensors (Wan2.2 A14B's two experts over four Euler steps that
    cross the boundary, from given noise and prompt embeddings) against diffusers: the loop
    written out over diffusers' FlowMatchEulerDiscreteScheduler and WanTransformer3DModel
    with WanPipeline's rule for the expert of each step (t >= boundary_ratio * 1000: the
    first, with guidance_scale; else the second, with guidance_scale_2), then diffusers'
    WanPipeline itself with transformer_2 and boundary_ratio, float64 on the CPU."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

    raw, meta = read_safetensors(os.path.join(golden, "wan_a14b_schedule.safetensors"))
    t = {k: torch.from_numpy(v) for k, v in raw.items()}
    c = json.loads(meta["config"])
    experts = diffusers_experts(t, c)
    ratio, shift = float(meta["boundary_ratio"]), float(meta["shift"])
    g1, g2 = float(meta["guidance"]), float(meta["guidance_2"])
    sigmas = [float(x) for x in t["input.sigmas"]]
    pos, neg = t["input.context"].double(), t["input.negative_context"].double()
    noise = ncdhw(t["input.noise"])
    ref = ncdhw(t["output.latents"])
    want = [int(x) for x in t["output.experts"]]

    def scheduler():
        s = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
        plain = s.set_timesteps
        # WanPipeline asks for N evenly spaced steps; the fixture's explicit list is what runs.
        s.set_timesteps = lambda n=None, device=None, **kw: plain(sigmas=sigmas, device=device)
        return s

    # 1. The loop written out.
    s = scheduler()
    s.set_timesteps(len(sigmas))
    boundary = ratio * s.config.num_train_timesteps
    x = noise.clone().float()
    chosen = []
    with torch.no_grad():
        for ts in s.timesteps:
            e = 0 if ts >= boundary else 1
            chosen.append(e)
            m, g = experts[e], (g1 if e == 0 else g2)
            inp, tt = x.double(), ts.expand(1)
            x = s.step(guided(m, inp, tt, pos, neg, g), ts, x, return_dict=False)[0]
    print(f"  a14b: timesteps {[round(float(v), 2) for v in s.timesteps]}, experts {chosen} (fixture {want})")
    report("a14b expert per step vs diffusers' rule", float(sum(a != b for a, b in zip(chosen, want))), 0.0,
           "count of steps with another expert")  # fmt: skip
    report("a14b latents vs diffusers scheduler + transformers", rel(x, ref), 1e-4,
           "diffusers keeps σ and the latents in f32 between steps")  # fmt: skip

    # 2. diffusers' WanPipeline itself, two experts (no VAE, tokenizer or text encoder).
    calls = []
    for i, m in enumerate(experts):
        m.register_forward_pre_hook(lambda _m, _a, kw, i=i: calls.append(i), with_kwargs=True)
    try:
        pipe = WanPipeline(
            tokenizer=None, text_encoder=None, vae=None, scheduler=scheduler(),
            transformer=experts[0], transformer_2=experts[1], boundary_ratio=ratio,
        )  # fmt: skip
    except Exception as e:  # an older or newer diffusers may insist on every component
        print(f"  skip WanPipeline for a14b: cannot build it without a VAE/text encoder ({type(e).__name__}: {e})")
        return
    out = pipe(
        prompt=None, negative_prompt=None, prompt_embeds=pos, negative_prompt_embeds=neg,
        height=noise.shape[3] * 8, width=noise.shape[4] * 8, num_frames=1 + 4 * (noise.shape[2] - 1),
        num_inference_steps=len(sigmas), guidance_scale=g1, guidance_scale_2=g2,
        latents=noise.clone(), output_type="latent", return_dict=False,
    )[0]  # fmt: skip
    per_step = calls[::2]  # two calls a step, conditional then unconditional, by the same expert
    report("a14b expert per step vs diffusers WanPipeline", float(sum(a != b for a, b in zip(per_step, want))), 0.0,
           f"diffusers ran {per_step}")  # fmt: skip
    report("a14b latents vs diffusers WanPipeline", rel(out, ref), 1e-4,
           "diffusers keeps σ and the latents in f32 between steps")  # fmt: skip


def check_i2v_a14b(golden):
    """wan_i2v_a14b_pipeline.safetensors (Wan2.2 I2V-A14B: two experts taking the 36-channel
    condition without CLIP, four Euler steps across boundary_ratio 0.9, from i2v_image.png
    and, second run, with it mirrored as the last image) against diffusers: the loop written
    out over AutoencoderKLWan (the condition), FlowMatchEulerDiscreteScheduler and
    WanTransformer3DModel with WanImageToVideoPipeline's rules, then
    WanImageToVideoPipeline itself with transformer_2 and boundary_ratio and no image
    encoder, float64 on the CPU (the pipeline keeps the latents and condition in f32)."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline
    from PIL import Image

    raw, meta = read_safetensors(os.path.join(golden, "wan_i2v_a14b_pipeline.safetensors"))
    t = {k: torch.from_numpy(v) for k, v in raw.items()}
    c = json.loads(meta["config"])["transformer"]
    p = json.loads(meta["pipeline"])
    experts = diffusers_experts(t, c)
    vw, _, vc = split(os.path.join(golden, "wan_vae.safetensors"))
    keys = ["base_dim", "z_dim", "dim_mult", "num_res_blocks", "attn_scales", "temperal_downsample", "dropout",
            "latents_mean", "latents_std"]  # fmt: skip
    vae = AutoencoderKLWan(**{k: vc[k] for k in keys})
    vae.load_state_dict(vw, strict=True)
    vae = vae.double().eval()
    pos, neg = t["input.prompt_embeds"].double(), t["input.negative_prompt_embeds"].double()
    noise = ncdhw(t["inter.noise"])
    want = [int(x) for x in t["output.experts"]]
    first = Image.open(os.path.join(golden, meta["image"])).convert("RGB")
    H, W, T = p["height"], p["width"], p["frames"]

    def scheduler():
        s = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=p["shift"])
        plain = s.set_timesteps
        # The pipeline asks for N evenly spaced steps; the fixture's explicit list is what runs.
        s.set_timesteps = lambda n=None, device=None, **kw: plain(sigmas=p["sigmas"], device=device)
        return s

    for name, last in [("i2v", None), ("flf", first.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]:
        ref = ncdhw(t[f"output.latents_{name}"])
        # 1. The loop written out: the condition from diffusers' VAE, its scheduler, the expert rule.
        px = lambda im: torch.from_numpy(np.asarray(im, dtype=np.float64) / 127.5 - 1.0).permute(2, 0, 1)  # noqa: E731
        video = torch.zeros(1, 3, T, H, W, dtype=torch.float64)
        video[0, :, 0] = px(first)
        if last is not None:
            video[0, :, -1] = px(last)
        mean = torch.tensor(vc["latents_mean"]).view(1, -1, 1, 1, 1).double()
        inv_std = 1.0 / torch.tensor(vc["latents_std"]).view(1, -1, 1, 1, 1).double()
        lat = (vae.encode(video).latent_dist.mode() - mean) * inv_std
        fl = noise.shape[2]
        known = torch.zeros(T)
        known[0] = 1
        if last is not None:
            known[-1] = 1
        seq = torch.cat([known[:1].repeat(4), known[1:]])
        mask = seq.view(fl, 4).t()[None, :, :, None, None].expand(1, 4, fl, *lat.shape[3:]).double()
        condition = torch.cat([mask, lat], 1)
        report(f"i2v-a14b {name} condition vs diffusers' VAE", rel(condition, ncdhw(t[f"inter.condition_{name}"])), 1e-6)
        s = scheduler()
        s.set_timesteps(len(p["sigmas"]))
        boundary = p["boundary_ratio"] * s.config.num_train_timesteps
        x = noise.clone().float()
        chosen = []
        for ts in s.timesteps:
            e = 0 if ts >= boundary else 1
            chosen.append(e)
            m, g = experts[e], (p["guidance"] if e == 0 else p["guidance_2"])
            inp, tt = torch.cat([x.double(), condition], 1), ts.expand(1)
            x = s.step(guided(m, inp, tt, pos, neg, g), ts, x, return_dict=False)[0]
        report(f"i2v-a14b {name} expert per step vs diffusers' rule", float(sum(a != b for a, b in zip(chosen, want))),
               0.0, f"ran {chosen}")  # fmt: skip
        report(f"i2v-a14b {name} latents vs diffusers VAE + scheduler + transformers", rel(x, ref), 1e-4,
               "diffusers keeps σ and the latents in f32 between steps")  # fmt: skip

        # 2. WanImageToVideoPipeline itself: two experts, no image encoder, embeddings in, latents out.
        calls = []
        hooks = [
            m.register_forward_pre_hook(lambda _m, _a, kw, i=i: calls.append(i), with_kwargs=True)
            for i, m in enumerate(experts)
        ]
        try:
            pipe = WanImageToVideoPipeline(
                tokenizer=None, text_encoder=None, vae=vae, scheduler=scheduler(), image_encoder=None,
                image_processor=None, transformer=experts[0], transformer_2=experts[1],
                boundary_ratio=p["boundary_ratio"],
            )  # fmt: skip
        except Exception as e:  # an older or newer diffusers may insist on every component
            print(f"  skip WanImageToVideoPipeline for i2v-a14b: cannot build it ({type(e).__name__}: {e})")
            for h in hooks:
                h.remove()
            return
        out = pipe(
            image=first, last_image=last, prompt=None, negative_prompt=None, prompt_embeds=pos,
            negative_prompt_embeds=neg, height=H, width=W, num_frames=T, num_inference_steps=len(p["sigmas"]),
            guidance_scale=p["guidance"], guidance_scale_2=p["guidance_2"], latents=noise.clone().float(),
            output_type="latent", return_dict=False,
        )[0]  # fmt: skip
        for h in hooks:
            h.remove()
        per_step = calls[::2]  # two calls a step, conditional then unconditional, by the same expert
        report(f"i2v-a14b {name} expert per step vs WanImageToVideoPipeline",
               float(sum(a != b for a, b in zip(per_step, want))), 0.0, f"diffusers ran {per_step}")  # fmt: skip
        report(f"i2v-a14b {name} latents vs WanImageToVideoPipeline", rel(out, ref), 1e-4,
               "diffusers keeps σ, the latents and the condition in f32")  # fmt: skip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", required=True)
    ap.add_argument("--diffusers", help="path of a diffusers source tree's src/ folder")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    if args.diffusers:
        sys.path.insert(0, args.diffusers)
    checks = [("umt5", check_umt5), ("clip", check_clip)]
    if args.diffusers:
        checks += [
            ("transformer", check_transformer),
            ("vae", check_vae),
            ("i2v transformer", lambda g: check_i2v_transformer(g, "wan_i2v_transformer")),
            ("flf2v transformer", lambda g: check_i2v_transformer(g, "wan_flf2v_transformer")),
        ]
        if os.path.exists(os.path.join(args.golden, "wan_pipeline.safetensors")):
            checks += [("pipeline", check_pipeline)]
        if os.path.exists(os.path.join(args.golden, "wan_ti2v.safetensors")):
            checks += [("wan2.2 vae", check_vae22), ("ti2v", check_ti2v)]
        if os.path.exists(os.path.join(args.golden, "wan_a14b_schedule.safetensors")):
            checks += [("a14b", check_a14b_schedule)]
        if os.path.exists(os.path.join(args.golden, "wan_i2v_a14b_pipeline.safetensors")):
            checks += [("i2v-a14b", check_i2v_a14b)]
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
