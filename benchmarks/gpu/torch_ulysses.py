"""PyTorch + NCCL Ulysses sequence parallelism on training/tessera_ref's Wan transformer: the
comparison for benchmarks/gpu/multigpu.mjs (scripts/gpu/multigpu.sh runs both).

  torchrun --standalone --nproc-per-node N torch_ulysses.py --config 1.3b|14b --size 832x480 \
      [--frames 81] [--layers L] [--strategy ulysses|cfg] [--reps 3] [--warmup 1] [--check] --out FILE.json

One denoising step of random bf16 weights with both guidance branches (batch 2), as the
reference's xDiT-style split does it: the video tokens cut into N equal contiguous slices
(no padding: 21·30·52 and 21·45·80 tokens divide by 2, 4 and 8), RoPE at the global
positions, and around each self-attention an all-to-all (torch.distributed.all_to_all_single)
from tokens to heads and back, attention by F.scaled_dot_product_attention (PyTorch picks the
backend). --strategy cfg (2 ranks): each rank runs one branch over the whole sequence and the
two outputs are all-gathered. With one process, the plain forward. Timed between barriers
after torch.cuda.synchronize(); median of --reps. --check (with N > 1): the gathered output
against the one-GPU forward computed on every rank (max |diff| / max |ref|).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "training"))
import tessera_ref.wan_transformer as wt  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--config", choices=["1.3b", "14b", "tiny"], default="1.3b")
p.add_argument("--size", default="832x480")
p.add_argument("--frames", type=int, default=81)
p.add_argument("--layers", type=int, default=0, help="blocks to run (0: all)")
p.add_argument("--strategy", choices=["ulysses", "cfg"], default="ulysses")
p.add_argument("--reps", type=int, default=3)
p.add_argument("--warmup", type=int, default=1)
p.add_argument("--check", action="store_true")
p.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
               help="cpu: a smoke run (gloo, f32; use --config tiny)")
p.add_argument("--out", required=True)
a = p.parse_args()

world = int(os.environ.get("WORLD_SIZE", "1"))
rank = int(os.environ.get("RANK", "0"))
local = int(os.environ.get("LOCAL_RANK", "0"))
cuda = a.device == "cuda"
if cuda:
    torch.cuda.set_device(local)
dev = torch.device("cuda", local) if cuda else torch.device("cpu")
if world > 1:
    dist.init_process_group("nccl" if cuda else "gloo")

if a.config == "14b":
    cfg = wt.WanTransformerConfig(num_attention_heads=40, ffn_dim=13824, num_layers=40)
elif a.config == "tiny":
    cfg = wt.WanTransformerConfig(num_attention_heads=4, attention_head_dim=24, text_dim=32, freq_dim=32,
                                  ffn_dim=96, num_layers=2)
else:
    cfg = wt.WanTransformerConfig()
full_layers = cfg.num_layers
if a.layers:
    cfg.num_layers = a.layers
heads = cfg.num_attention_heads
w, h = (int(v) for v in a.size.split("x"))
lf = 1 + (a.frames - 1) // 4
pt, ph, pw = cfg.patch_size
grid = (lf // pt, h // 8 // ph, w // 8 // pw)
L = math.prod(grid)
dt = torch.bfloat16 if cuda else torch.float32

rec: dict = {"torch": torch.__version__, "worldSize": world, "config": a.config,
             "layers": cfg.num_layers, "numLayers": full_layers, "size": a.size, "frames": a.frames,
             "tokens": L, "strategy": "single" if world == 1 else a.strategy, "dtype": "bf16",
             "reps": a.reps, "warmup": a.warmup, "device": a.device}
if cuda:
    rec.update(nccl=".".join(map(str, torch.cuda.nccl.version())), gpu=torch.cuda.get_device_name(dev))


def save():
    if rank == 0:
        with open(a.out, "w") as f:
            json.dump(rec, f, indent=1)


def fail(msg: str):
    rec["skipped"] = msg
    save()
    if world > 1:
        dist.destroy_process_group()
    sys.exit(0)


if world > 1 and a.strategy == "ulysses" and heads % world:
    fail(f"{heads} heads are not divisible by {world} ranks (Ulysses needs it; xDiT would mix in ring attention)")
if world > 1 and a.strategy == "ulysses" and L % world:
    fail(f"{L} tokens are not divisible by {world} ranks")
if a.strategy == "cfg" and world != 2:
    fail("the cfg split needs exactly 2 ranks")


_sdpa_written_out = wt.sdpa


def sdpa_fast(q, k, v, mask=None, bias=None, scale=None):
    """[B, L, H, D] in and out through F.scaled_dot_product_attention (the written-out form on
    a PyTorch too old to have it: the CPU smoke run)."""
    if not hasattr(F, "scaled_dot_product_attention"):
        return _sdpa_written_out(q, k, v, scale=scale)
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=scale)
    return o.transpose(1, 2)


wt.sdpa = sdpa_fast  # cross-attention, and the one-GPU reference


def seq_to_heads(x):
    """[B, L/N, H, D] (my tokens, all heads) -> [B, L, H/N, D] (all tokens, my heads)."""
    b, lr, hh, d = x.shape
    x = x.reshape(b, lr, world, hh // world, d).permute(2, 0, 1, 3, 4).contiguous()
    out = torch.empty_like(x)
    dist.all_to_all_single(out, x)  # out[j] = rank j's tokens, my heads
    return out.permute(1, 0, 2, 3, 4).reshape(b, world * lr, hh // world, d)


def heads_to_seq(x):
    """[B, L, H/N, D] -> [B, L/N, H, D]."""
    b, ll, hn, d = x.shape
    lr = ll // world
    x = x.reshape(b, world, lr, hn, d).permute(1, 0, 2, 3, 4).contiguous()
    out = torch.empty_like(x)
    dist.all_to_all_single(out, x)  # out[j] = my tokens, rank j's heads
    return out.permute(1, 2, 0, 3, 4).reshape(b, lr, world * hn, d)


ulysses_on = False


def attention_forward(self, x, context=None, rope=None):
    ctx = x if context is None else context
    b, lq, d = x.shape
    lk = ctx.shape[1]
    q = self.norm_q(self.to_q(x)).view(b, lq, self.heads, -1)
    k = self.norm_k(self.to_k(ctx)).view(b, lk, self.heads, -1)
    v = self.to_v(ctx).view(b, lk, self.heads, -1)
    if rope is not None:
        q = wt.apply_rope(q, *rope)
        k = wt.apply_rope(k, *rope)
    if rope is not None and ulysses_on:
        o = heads_to_seq(sdpa_fast(seq_to_heads(q), seq_to_heads(k), seq_to_heads(v)))
    else:
        o = sdpa_fast(q, k, v)
    return self.to_out[0](o.reshape(b, lq, d))


wt.Attention.forward = attention_forward


def forward_ulysses(model, hs, t, ctx_states):
    """WanTransformer.forward with this rank's slice of the tokens; returns the whole output on every rank."""
    global ulysses_on
    c = model.config
    b, _, f, hh, ww = hs.shape
    dtype = model.patch_embedding.weight.dtype
    x = model.patch_embedding(hs).flatten(2).transpose(1, 2)
    lr = L // world
    x = x[:, rank * lr:(rank + 1) * lr].contiguous()
    cos, sin = wt.rope_cos_sin(grid, c.attention_head_dim, x.device)
    rope = (cos[rank * lr:(rank + 1) * lr], sin[rank * lr:(rank + 1) * lr])
    ce = model.condition_embedder
    temb = ce.time_embedder(wt.timestep_sinusoid(t, c.freq_dim, dtype))
    tproj = ce.time_proj(F.silu(temb)).unflatten(1, (6, model.dim))
    ctx = ce.text_embedder(ctx_states)
    ulysses_on = True
    try:
        for blk in model.blocks:
            x = blk(x, ctx, tproj, rope)
    finally:
        ulysses_on = False
    shift, scale = (model.scale_shift_table.to(temb.dtype) + temb[:, None]).unbind(1)
    x = wt.layer_norm(x, c.eps) * (1 + scale[:, None]) + shift[:, None]
    x = model.proj_out(x).contiguous()
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x)
    x = torch.cat(parts, dim=1)
    x = x.reshape(b, *grid, pt, ph, pw, c.out_channels).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return x.reshape(b, c.out_channels, f, hh, ww)


def forward_cfg(model, hs, t, ctx_states):
    """Rank r runs branch r (batch 1) over the whole sequence; the two are all-gathered."""
    y = model(hs[rank:rank + 1], t[rank:rank + 1], ctx_states[rank:rank + 1]).contiguous()
    parts = [torch.empty_like(y) for _ in range(world)]
    dist.all_gather(parts, y)
    return torch.cat(parts, dim=0)


torch.manual_seed(0)  # the same weights and inputs on every rank
t0 = time.time()
torch.set_default_dtype(dt)  # parameters made in the run's dtype (14B in f32 would be 56 GB)
with torch.device(dev) if hasattr(torch, "set_default_device") else contextlib.nullcontext():
    model = wt.WanTransformer(cfg).to(dev).eval()  # made on the GPU where PyTorch can (>= 2.0)
torch.set_default_dtype(torch.float32)
hs = torch.randn(2, cfg.in_channels, lf, h // 8, w // 8, device=dev, dtype=dt)
tt = torch.full((2,), 500.0, device=dev)
text = torch.randn(2, 512, cfg.text_dim, device=dev, dtype=dt)
sync = torch.cuda.synchronize if cuda else (lambda: None)
sync()
rec["setupS"] = time.time() - t0


def step():
    if world == 1:
        return model(hs, tt, text)
    return forward_cfg(model, hs, tt, text) if a.strategy == "cfg" else forward_ulysses(model, hs, tt, text)


def barrier():
    sync()
    if world > 1:
        dist.barrier()


ms = []
with torch.no_grad():
    for i in range(a.warmup + a.reps):
        barrier()
        s = time.perf_counter()
        y = step()
        barrier()
        e = (time.perf_counter() - s) * 1000
        if i >= a.warmup:
            ms.append(e)
        print(f"[rank {rank}] {'warm-up' if i < a.warmup else 'step'} {e:.0f} ms", file=sys.stderr, flush=True)
        save()
    ms_sorted = sorted(ms)
    rec["stepMs"] = {"median": ms_sorted[len(ms) // 2], "all": ms}
    rec["extrapolatedMs"] = rec["stepMs"]["median"] * full_layers / cfg.num_layers
    if cuda:
        rec["peakBytes"] = torch.cuda.max_memory_allocated(dev)
    if a.check and world > 1:
        ref = model(hs, tt, text)
        err = ((y.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
        errs = [torch.zeros(1, device=dev) for _ in range(world)]
        dist.all_gather(errs, torch.tensor([err], device=dev))
        rec["check"] = {"maxRelErr": max(float(x.item()) for x in errs)}
save()
if world > 1:
    dist.destroy_process_group()
