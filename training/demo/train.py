"""Trains the bundled demo model on the procedural world (on the GPU host).

    cd training && python3 -m demo.train --data DIR --out DIR [--init DIR]
        [--vae-minutes M] [--dit-minutes M] [--decay] [--samples DIR]

One process runs, in order: (1) the causal VAE, unless --init holds a trained one;
(2) the VAE's encoder over every clip (posterior means, normalised per channel);
(3) the umT5-style text encoder and the Wan DiT together, with flow matching,
classifier-free-guidance dropout and known-frame masks. Each stage stops on a wall
clock budget so that one device call (10 minutes) fits; the next call resumes from
the files this one leaves in --out (--init). Adam state is not carried between calls
(the device tool returns files of at most 16 MiB), so training resumes from the EMA
weights with a short warm-up.

Known-frame masks: the engine conditions image-to-video, extension and loops by
overwriting known latent frames with (1 - σ)·k + σ·ε at every step — exactly the
forward process this trainer samples — so a mask here only takes the known frames
out of the loss, which spends the model's capacity on the frames it must invent
from them."""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time

import torch
import torch.nn.functional as F

from demo.common import (
    WordTokenizer,
    fast_sdpa,
    load_clips,
    load_sharded,
    psnr,
    save_sharded,
    text_states,
    to_model_video,
)
from demo.config import DIT, FRAMES, GUIDANCE, SHIFT, STEPS, VAE, t5_config
from tessera_ref import UMT5Encoder, WanTransformer, WanVAE
from tessera_ref.sampling import flow_matching_pair, sample, shift_sigma
from tessera_ref.wan_vae import FeatCache

DEV = os.environ.get("DEMO_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
KL_WEIGHT = 1e-4
CFG_DROPOUT = 0.1
KNOWN_FRAME_P = 0.3


def log(state: dict, **kv) -> None:
    kv["t"] = round(time.time() - state["t0"], 1)
    state["log"].append(kv)
    print(json.dumps(kv), flush=True)


def decode_unclamped(vae: WanVAE, z: torch.Tensor) -> torch.Tensor:
    """WanVAE.decode without the final clamp, so the loss has gradients everywhere."""
    x = vae.post_quant_conv(z)
    cache = FeatCache()
    return torch.cat([vae.decoder(x[:, :, i : i + 1], cache) for i in range(x.shape[2])], dim=2)


def detail_weights(x: torch.Tensor) -> torch.Tensor:
    """[B, 1, T, H, W] loss weights, 10 near edges (objects, the background split) and
    1 on flat background: objects cover a few percent of the pixels, and a plain L1
    lets the VAE buy most of its loss back by drawing the background alone."""
    b, c, t, h, w = x.shape
    f = x.transpose(1, 2).reshape(b * t, c, h, w)
    edge = (f - F.avg_pool2d(f, 5, 1, 2, count_include_pad=False)).abs().amax(1, keepdim=True) > 0.05
    near = F.max_pool2d(edge.float(), 9, 1, 4)
    return (1 + 9 * near).reshape(b, t, 1, h, w).transpose(1, 2)


def edge_l1(err: torch.Tensor, wgt: torch.Tensor) -> torch.Tensor:
    """Weighted L1 of the error's spatial finite differences: a blurred edge costs little
    in plain L1 (few pixels) but flattens the shapes the scorer tells apart (a
    square's corners, a triangle's apex), so the difference images are matched too."""
    dx = (err[..., :, 1:] - err[..., :, :-1]).abs() * wgt[..., :, 1:]
    dy = (err[..., 1:, :] - err[..., :-1, :]).abs() * wgt[..., 1:, :]
    return (dx.mean() + dy.mean()) / wgt.mean()


def train_vae(vae: WanVAE, clips: torch.Tensor, minutes: float, st: dict, batch: int = 16, window: int = 9,
              lr: float = 4e-4, decay: bool = False) -> None:
    """Trains on random windows of 1 + 4k frames: a window exercises the first-chunk
    path and the cached steady state exactly as a full clip does, at half the cost.
    With decay, the learning rate falls linearly to 5% by the end of the budget (for
    a call that finishes the VAE)."""
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    vae.train()
    t_start = time.time()
    t_end = t_start + minutes * 60
    deadline = float(os.environ.get("DEMO_DEADLINE", "0"))
    if deadline:
        t_end = min(t_end, deadline - 45)
    span = max(1.0, t_end - t_start)
    step = 0
    while time.time() < t_end:
        idx = torch.randint(0, clips.shape[0], (batch,), device=clips.device)
        t0 = int(torch.randint(0, FRAMES - window + 1, (1,)))
        x = to_model_video(clips[idx, t0 : t0 + window])
        frac = (time.time() - t_start) / span
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 200) * (max(0.05, 1.0 - frac) if decay else 1.0)
        with torch.autocast(DEV, torch.bfloat16):
            mu, logvar = vae.encode(x).float().chunk(2, dim=1)
            logvar = logvar.clamp(-20.0, 10.0)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            rec = decode_unclamped(vae, z).float()
        wgt = detail_weights(x)
        err = rec - x
        l1 = (err.abs() * wgt).mean() / wgt.mean()
        mse = (err.pow(2) * wgt).mean() / wgt.mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean()
        edge = edge_l1(err, wgt)
        loss = l1 + mse + edge + KL_WEIGHT * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 200 == 0:
            log(st, stage="vae", step=step, l1=round(l1.item(), 5), mse=round(mse.item(), 6), edge=round(edge.item(), 5),
                kl=round(kl.item(), 3),
                psnr=round(psnr(rec.clamp(-1, 1), x), 2))
        step += 1
    st["vae_steps"] = st.get("vae_steps", 0) + step
    vae.eval()


@torch.no_grad()
def encode_all(vae: WanVAE, clips: torch.Tensor, batch: int = 64) -> torch.Tensor:
    out = []
    for i in range(0, clips.shape[0], batch):
        with torch.autocast(DEV, torch.bfloat16):
            out.append(vae.encode_mean(to_model_video(clips[i : i + batch])).float())
    return torch.cat(out)


@torch.no_grad()
def vae_check(vae: WanVAE, clips: torch.Tensor, st: dict) -> torch.Tensor:
    """PSNR of the f32 round trip on 32 clips, overall and near edges; returns 2 reconstructions (uint8)."""
    x = to_model_video(clips[:32])
    rec = vae.decode(vae.encode_mean(x))
    wgt = detail_weights(x)
    edge_mse = (((rec - x).pow(2) * (wgt > 1)).sum() / ((wgt > 1).sum() * 3)).item()
    log(st, stage="vae-check", psnr_f32=round(psnr(rec, x), 2), psnr_edges=round(10 * math.log10(4 / max(edge_mse, 1e-12)), 2))
    return ((rec[:2].permute(0, 2, 3, 4, 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def known_frame_weights(b: int, f: int, device) -> torch.Tensor:
    """[B, 1, F, 1, 1] loss weights: 0 on the latent frames a random mask declares known
    (the first; the first 2 or 3; the last; the first and the last), 1 elsewhere."""
    w = torch.ones(b, 1, f, 1, 1, device=device)
    pick = torch.rand(b) < KNOWN_FRAME_P
    kinds = torch.randint(0, 4, (b,))
    for i in torch.nonzero(pick).flatten().tolist():
        k = int(kinds[i])
        if k == 0:
            w[i, :, 0] = 0
        elif k == 1:
            w[i, :, : int(torch.randint(2, min(4, f), (1,)))] = 0
        elif k == 2:
            w[i, :, f - 1] = 0
        else:
            w[i, :, 0] = 0
            w[i, :, f - 1] = 0
    return w


def train_dit(dit, t5, lat, ids_all, empty_ids, minutes: float, st: dict, decay: bool, batch: int = 256,
              lr: float = 2e-4, compile_model: bool = True):
    params = [p for m in (dit, t5) for p in m.parameters()]
    ema_models = (copy.deepcopy(dit).eval(), copy.deepcopy(t5).eval())
    ema = [p for m in ema_models for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
    fwd = dit
    if compile_model:
        try:
            fwd = torch.compile(dit)
        except Exception as e:  # noqa: BLE001 - eager is slower but correct
            log(st, stage="dit", note=f"torch.compile unavailable: {e}")
    dit.train()
    t5.train()
    n = lat.shape[0]
    t_start = time.time()
    t_end = t_start + minutes * 60
    deadline = float(os.environ.get("DEMO_DEADLINE", "0"))
    if deadline:
        # Leave time to save and sample before the device call's limit.
        t_end = min(t_end, deadline - 60)
        minutes = max(1e-3, (t_end - t_start) / 60)
    step = 0
    warmup = 300
    while time.time() < t_end:
        frac = (time.time() - t_start) / (minutes * 60)
        scale = min(1.0, (step + 1) / warmup) * (max(0.05, 1.0 - frac) if decay else 1.0)
        for g in opt.param_groups:
            g["lr"] = lr * scale
        idx = torch.randint(0, n, (batch,), device=lat.device)
        z = lat[idx]
        ids = ids_all[idx]
        drop = torch.rand(batch, device=lat.device) < CFG_DROPOUT
        ids = torch.where(drop[:, None], empty_ids[None], ids)
        noise = torch.randn_like(z)
        sigma = shift_sigma(torch.rand(batch, device=lat.device), SHIFT)
        x_s, t, target = flow_matching_pair(z, noise, sigma)
        w = known_frame_weights(batch, z.shape[2], z.device)
        with torch.autocast(DEV, torch.bfloat16):
            ctx = text_states(t5, ids)
            v = fwd(x_s, t, ctx)
        err = (v.float() - target).pow(2) * w
        loss = err.sum() / (w.sum() * z.shape[1] * z.shape[3] * z.shape[4])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        d = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_mul_(ema, d)
            torch._foreach_add_(ema, params, alpha=1 - d)
        if step % 250 == 0:
            log(st, stage="dit", step=step, loss=round(loss.item(), 5), grad=round(float(gn), 3),
                lr=round(lr * scale, 7))
        step += 1
    st["dit_steps"] = st.get("dit_steps", 0) + step
    log(st, stage="dit", done_steps=step, total_steps=st["dit_steps"])
    return ema_models


@torch.no_grad()
def sample_clips(vae, dit, t5, tok, prompts, stats, seed: int = 0):
    """The trainer's own sampler (Euler, CFG) on a few prompts -> uint8 [N, 17, 128, 128, 3]."""
    mean, std = (torch.tensor(s, device=DEV).view(1, -1, 1, 1, 1) for s in stats)
    g = torch.Generator(device=DEV).manual_seed(seed)
    out = []
    for p in prompts:
        ctx = text_states(t5, tok.batch([p]).to(DEV))
        neg = text_states(t5, tok.batch([""]).to(DEV))
        noise = torch.randn(1, 16, (FRAMES - 1) // 4 + 1, 16, 16, device=DEV, generator=g)
        z = sample(lambda x, t, c: dit(x, t, c), noise, ctx, steps=STEPS, shift=SHIFT, guidance_scale=GUIDANCE,
                   negative_context=neg)
        video = vae.decode(z * std + mean)
        out.append(((video[0].permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu())
    return torch.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", default=None)
    ap.add_argument("--train-vae", action="store_true", help="train the VAE further even when --init has one")
    ap.add_argument("--vae-minutes", type=float, default=4.0)
    ap.add_argument("--vae-lr", type=float, default=4e-4)
    ap.add_argument("--vae-batch", type=int, default=16)
    ap.add_argument("--vae-decay", action="store_true", help="decay the VAE's learning rate to 5%% over this call")
    ap.add_argument("--rebase-dit", action="store_true",
                    help="resume the DiT from --init in the latent space of this call's VAE (after a VAE-only call)")
    ap.add_argument("--dit-minutes", type=float, default=3.0)
    ap.add_argument("--decay", action="store_true", help="decay the learning rate to 5%% over this call")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--sample-prompts", default=None, help="JSON list of prompts to sample at the end")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(int(time.time()))
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    fast_sdpa()
    st = {"t0": time.time(), "log": []}
    prev = {}
    if a.init and os.path.exists(os.path.join(a.init, "train.json")):
        with open(os.path.join(a.init, "train.json")) as f:
            prev = json.load(f)
        st["vae_steps"] = prev.get("vae_steps", 0)
        st["dit_steps"] = prev.get("dit_steps", 0)

    clips, captions, _held = load_clips(a.data, DEV)
    log(st, stage="data", clips=clips.shape[0])

    vae = WanVAE(VAE).to(DEV)
    have_vae = bool(a.init and prev.get("vae_steps"))
    if have_vae:
        vae.load_state_dict(load_sharded(os.path.join(a.init, "vae")))
        vae.eval()
    if a.train_vae or not have_vae:
        train_vae(vae, clips, a.vae_minutes, st, batch=a.vae_batch, lr=a.vae_lr, decay=a.vae_decay)
    recons = vae_check(vae, clips, st)
    recon_captions = captions[:2]
    save_sharded(vae.state_dict(), os.path.join(a.out, "vae"))
    if a.dit_minutes <= 0:
        # A VAE-only call: the next one encodes the latents (--rebase-dit keeps the DiT).
        st["dit_steps"] = 0
        log(st, stage="done")
        write_train_json(a.out, st, prev, clips=clips.shape[0])
        return

    # A VAE trained in this call moves the latent space: the DiT then starts afresh,
    # unless --rebase-dit asks to carry its weights into the new latent space (its
    # normalisation is recomputed, so it adapts in far fewer steps than from scratch).
    have_dit = bool(a.init and os.path.exists(os.path.join(a.init, "dit-000.safetensors")))
    resume_dit = have_dit and (a.rebase_dit or (bool(prev.get("dit_steps")) and not a.train_vae))
    if not resume_dit:
        st["dit_steps"] = 0
    mu = encode_all(vae, clips)
    if resume_dit and not a.rebase_dit:
        mean, std = prev["latents_mean"], prev["latents_std"]
    else:
        mean = mu.mean(dim=(0, 2, 3, 4)).tolist()
        std = mu.std(dim=(0, 2, 3, 4)).tolist()
    lat = (mu - torch.tensor(mean, device=DEV).view(1, -1, 1, 1, 1)) / torch.tensor(std, device=DEV).view(1, -1, 1, 1, 1)
    log(st, stage="latents", shape=list(lat.shape), mean=[round(x, 3) for x in mean], std=[round(x, 3) for x in std])
    del clips, mu
    torch.cuda.empty_cache()

    tok = WordTokenizer()
    ids_all = tok.batch(captions).to(DEV)
    empty = tok.batch([""])[0].to(DEV)
    t5 = UMT5Encoder(t5_config(tok.size)).to(DEV)
    dit = WanTransformer(DIT).to(DEV)
    if resume_dit:
        dit.load_state_dict(load_sharded(os.path.join(a.init, "dit")))
        t5.load_state_dict(load_sharded(os.path.join(a.init, "t5")))
    ema_dit, ema_t5 = train_dit(dit, t5, lat, ids_all, empty, a.dit_minutes, st, a.decay,
                                compile_model=not a.no_compile)
    save_sharded(ema_dit.state_dict(), os.path.join(a.out, "dit"))
    save_sharded(ema_t5.state_dict(), os.path.join(a.out, "t5"))

    if a.sample_prompts:
        prompts = json.loads(a.sample_prompts)
        clips = torch.cat([sample_clips(vae, ema_dit, ema_t5, tok, prompts, (mean, std)), recons])
        clips.numpy().tofile(os.path.join(a.out, "samples.u8"))
        with open(os.path.join(a.out, "samples.json"), "w") as f:
            json.dump({"prompts": prompts + recon_captions, "reconstructions": 2, "shape": list(clips.shape)}, f)

    log(st, stage="done")
    write_train_json(a.out, st, prev, clips=lat.shape[0], latents_mean=mean, latents_std=std)


def write_train_json(out: str, st: dict, prev: dict, **extra) -> None:
    """train.json: step counts, the run's environment and every call's log (the next
    call's --init reads the counts, and the latent statistics when present)."""
    with open(os.path.join(out, "train.json"), "w") as f:
        json.dump({
            "vae_steps": st.get("vae_steps", 0), "dit_steps": st.get("dit_steps", 0), **extra,
            "torch": torch.__version__, "device": torch.cuda.get_device_name() if DEV == "cuda" else "cpu",
            "log": prev.get("log", []) + [st["log"]],
        }, f)


if __name__ == "__main__":
    main()
