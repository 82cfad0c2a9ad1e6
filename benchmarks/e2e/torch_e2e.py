"""PyTorch side of the end-to-end baseline (benchmarks/e2e/README.md), on training/tessera_ref.

  python3 torch_e2e.py --part eager   --out torch.json    # ceiling, DiT eager, umT5-XXL, VAE decode
  python3 torch_e2e.py --part compile --out compile.json  # DiT under torch.compile (mode default)
  add --tiny --device cpu for the smoke run (tiny configs, f32).
  python3 torch_e2e.py --part dit --wan14b --out torch-14b.json   # the DiT step of Wan2.1-T2V-14B
  python3 torch_e2e.py --part eager --ti2v --out torch-ti2v.json   # Wan2.2 TI2V-5B at 1280x704x121:
      DiT eager (latent [2, 48, 31, 44, 80]) and the Wan2.2 VAE decode in bf16 (scripts/gpu/ti2v-bench.sh)

DiT: tessera_ref WanTransformer in bf16, batch 2 (both guidance branches), latent [2, 16, 21, 60, 104],
text [2, 512, 4096]. The reference's written-out attention (einsum + softmax, exact in float64) would
materialise 2x12x32760^2 logits, so its `sdpa` is replaced by F.scaled_dot_product_attention under the
backend that is fastest at the self-attention shape (tried here: cuDNN, flash, efficient), as diffusers
runs it. Times: CUDA events around each call, warm-up first, median of --reps.
umT5-XXL: tessera_ref UMT5Encoder in bf16 as written (Hugging Face's einsum attention with the position
bias), one prompt of 512 positions. VAE: tessera_ref WanVAE.decode (one latent frame per chunk, feature
cache), f32 weights and latent as our pipeline runs it (cuDNN's TF32 convolutions: PyTorch's default),
and in bf16 for reference; peak = torch.cuda.max_memory_allocated after reset_peak_memory_stats.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "training"))
import tessera_ref.wan_transformer as wt  # noqa: E402
from tessera_ref.umt5 import UMT5Config, UMT5Encoder  # noqa: E402
from tessera_ref.wan_vae import WanVAE, WanVAEConfig  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--part", choices=["eager", "compile", "dit"], required=True)
p.add_argument("--out", required=True)
p.add_argument("--device", default="cuda")
p.add_argument("--tiny", action="store_true")
p.add_argument("--ti2v", action="store_true", help="Wan2.2 TI2V-5B shapes and configs (1280x704, 121 frames)")
p.add_argument("--wan14b", action="store_true", help="the DiT of Wan2.1-T2V-14B (40 heads, ffn 13824, 40 layers)")
p.add_argument("--reps", type=int, default=5)
p.add_argument("--budget", type=float, default=1e9, help="seconds; later sections are skipped past it")
a = p.parse_args()
T0 = time.time()
dev = torch.device(a.device)
cuda = dev.type == "cuda"
dt = torch.bfloat16 if cuda else torch.float32
torch.manual_seed(0)
if cuda:
    torch.backends.cudnn.benchmark = True

if a.tiny:
    S = dict(f=3, h=8, w=8, text=16)
    dit_cfg = wt.WanTransformerConfig(num_attention_heads=2, attention_head_dim=24, text_dim=32, freq_dim=32,
                                      ffn_dim=96, num_layers=2)
    t5_cfg = UMT5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=3)
    vae_cfg = WanVAEConfig(base_dim=8, z_dim=4, latents_mean=[0.1, -0.2, 0.3, -0.4], latents_std=[1.5, 0.5, 2.0, 1.0])
else:
    S = dict(f=21, h=60, w=104, text=512)
    dit_cfg, t5_cfg, vae_cfg = wt.WanTransformerConfig(), UMT5Config(), WanVAEConfig()
if a.ti2v:
    # Wan2.2 TI2V-5B: 1280x704, 121 frames -> latent 31x44x80 of 48 channels; the Wan2.2 VAE.
    from dataclasses import replace as _replace

    vae22 = dict(in_channels=12, out_channels=12, is_residual=True, patch_size=2)
    if a.tiny:
        dit_cfg = _replace(dit_cfg, in_channels=8, out_channels=8)
        vae_cfg = WanVAEConfig(base_dim=8, decoder_base_dim=12, z_dim=8, latents_mean=[0.0] * 8,
                               latents_std=[1.0] * 8, **vae22)
    else:
        S = dict(f=31, h=44, w=80, text=512)
        dit_cfg = wt.WanTransformerConfig(num_attention_heads=24, in_channels=48, out_channels=48, ffn_dim=14336,
                                          num_layers=30)
        vae_cfg = WanVAEConfig(base_dim=160, decoder_base_dim=256, z_dim=48, latents_mean=[0.0] * 48,
                               latents_std=[1.0] * 48, **vae22)

if a.wan14b and not a.tiny:
    from dataclasses import replace as _replace14

    dit_cfg = _replace14(dit_cfg, num_attention_heads=40, ffn_dim=13824, num_layers=40)

rec: dict = {"wan14b": a.wan14b, "part": a.part, "torch": torch.__version__, "tiny": a.tiny, "ti2v": a.ti2v, "dtype": str(dt),
             "reps": a.reps}
if cuda:
    pr = torch.cuda.get_device_properties(0)
    rec.update(gpu=torch.cuda.get_device_name(0), sms=pr.multi_processor_count,
               cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
               cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
               matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32)


def save():
    with open(a.out, "w") as f:
        json.dump(rec, f, indent=1)


def left():
    return a.budget - (time.time() - T0)


def sync():
    if cuda:
        torch.cuda.synchronize()


def timed(fn, reps, warm=1):
    """ms per call: CUDA events around each call (host clock on the CPU), after `warm` calls."""
    for _ in range(warm):
        fn()
    sync()
    ms = []
    for _ in range(reps):
        if cuda:
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            fn()
            e1.record()
            e1.synchronize()
            ms.append(e0.elapsed_time(e1))
        else:
            t = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t) * 1e3)
    s = sorted(ms)
    return {"median": s[len(s) // 2], "min": s[0], "max": s[-1], "all": ms}


def check(y):
    y = y.float()
    return {"finite": bool(torch.isfinite(y).all()), "rms": float(y.pow(2).mean().sqrt())}


def free():
    import gc

    gc.collect()
    if cuda:
        torch.cuda.empty_cache()


def build(cls, cfg):
    """Default PyTorch init, drawn on the device (fast), then cast."""
    m = on_device(cls, cfg).to(dt).eval()
    if isinstance(m, wt.WanTransformer):
        # The reference's head layer norm returns float32 (its _upcast) and feeds proj_out as is, which
        # only works when the model is float32 or float64; cast back as diffusers does (.type_as).
        m.proj_out.register_forward_pre_hook(lambda mod, args: (args[0].to(mod.weight.dtype),))
    return m


def on_device(cls, cfg):
    if hasattr(torch.device(dev), "__enter__"):
        with torch.device(dev):
            return cls(cfg)
    return cls(cfg).to(dev)  # torch < 2.0 (the CPU smoke run)


def once(fn):
    """(ms, result) of one call."""
    sync()
    if cuda:
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        y = fn()
        e1.record()
        e1.synchronize()
        return e0.elapsed_time(e1), y
    t = time.perf_counter()
    y = fn()
    return (time.perf_counter() - t) * 1e3, y


def dit_flops(c, b, f, h, w, lt):
    """Forward FLOPs (2 per MAC) of one DiT call on a batch of b."""
    d = c.num_attention_heads * c.attention_head_dim
    L = (f // c.patch_size[0]) * (h // c.patch_size[1]) * (w // c.patch_size[2])
    blk = {
        "self_qkvo": 4 * 2 * L * d * d,
        "self_attn": 4 * L * L * d,
        "cross_qo": 2 * 2 * L * d * d,
        "cross_kv": 2 * 2 * lt * d * d,
        "cross_attn": 4 * L * lt * d,
        "ffn": 2 * 2 * L * d * c.ffn_dim,
    }
    outside = {
        "patch_embed": 2 * L * c.in_channels * math.prod(c.patch_size) * d,
        "text_embed": 2 * lt * (c.text_dim * d + d * d),
        "proj_out": 2 * L * d * c.out_channels * math.prod(c.patch_size),
    }
    per_sample = c.num_layers * sum(blk.values()) + sum(outside.values())
    parts = {k: b * c.num_layers * v for k, v in blk.items()} | {k: b * v for k, v in outside.items()}
    return {"total": b * per_sample, "tokens": L, "parts": parts}


# --- attention: the reference's exact einsum form -> SDPA ([B, L, H, D] in and out) -----------------
SDPA_BACKEND = None


def sdpa_fast(q, k, v, mask=None, bias=None, scale=None):
    assert mask is None and bias is None
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=scale)
    return o.transpose(1, 2)


def pick_backend(L, heads, hd):
    """Times each SDPA backend at the self-attention shape; returns (name, table)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (torch.randn(2, heads, L, hd, device=dev, dtype=dt) for _ in range(3))
    table = {}
    for name in ["CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION"]:
        be = getattr(SDPBackend, name)
        try:
            with sdpa_kernel([be]):
                table[name] = timed(lambda: F.scaled_dot_product_attention(q, k, v), 5)["median"]
        except Exception as e:  # noqa: BLE001
            table[name] = f"failed: {type(e).__name__}: {str(e)[:200]}"
    ok = {n: t for n, t in table.items() if isinstance(t, float)}
    del q, k, v
    return (min(ok, key=ok.get) if ok else None), table


def dit_inputs(c):
    torch.manual_seed(3)
    x = torch.randn(2, c.in_channels, S["f"], S["h"], S["w"], device=dev, dtype=dt)
    t = torch.tensor([500.0, 500.0], device=dev)
    ctx = torch.randn(2, S["text"], c.text_dim, device=dev, dtype=dt)
    return x, t, ctx


def with_backend(fn):
    if SDPA_BACKEND is None:
        return fn()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([getattr(SDPBackend, SDPA_BACKEND)]):
        return fn()


def section(name, fn):
    if left() < 0:
        rec[name] = {"skipped": f"time budget ({a.budget:.0f} s) spent"}
        print(f"{name}: skipped (budget)", flush=True)
        save()
        return
    t = time.time()
    try:
        rec[name] = fn()
    except Exception as e:  # noqa: BLE001
        rec[name] = {"error": f"{type(e).__name__}: {str(e)[:2000]}", "trace": traceback.format_exc()[-3000:]}
        print(f"{name}: FAILED {type(e).__name__}: {str(e)[:500]}", flush=True)
    rec[name]["sectionS"] = time.time() - t
    save()
    free()


if hasattr(F, "scaled_dot_product_attention"):
    wt.sdpa = sdpa_fast  # Attention.forward looks `sdpa` up in the module at call time
rec["flops"] = dit_flops(dit_cfg, 2, S["f"], S["h"], S["w"], S["text"])
rec["attention"] = "F.scaled_dot_product_attention" if wt.sdpa is sdpa_fast else "reference einsum (no SDPA in this torch)"


def ceiling():
    n = 8192 if cuda else 256
    xs = [(torch.randn(n, n, device=dev, dtype=dt), torch.randn(n, n, device=dev, dtype=dt)) for _ in range(2)]
    i = [0]

    def mm():
        x, y = xs[i[0] % 2]
        i[0] += 1
        return x @ y

    r = timed(mm, 15, warm=3)
    return {"what": f"torch.matmul {n}^3 random {dt}, median of 15", "ms": r,
            "tflops": 2 * n**3 / (r["median"] * 1e-3) / 1e12,
            "tflops_range": [2 * n**3 / (r["max"] * 1e-3) / 1e12, 2 * n**3 / (r["min"] * 1e-3) / 1e12]}


def dit_eager():
    global SDPA_BACKEND
    c = dit_cfg
    out = {}
    if cuda and wt.sdpa is sdpa_fast:
        L = S["f"] * S["h"] // 2 * S["w"] // 2
        SDPA_BACKEND, out["sdpa_backends_ms"] = pick_backend(L, c.num_attention_heads, c.attention_head_dim)
        out["sdpa_backend"] = SDPA_BACKEND
    m = build(wt.WanTransformer, c)
    x, t, ctx = dit_inputs(c)
    with torch.inference_mode():
        out["check"] = check(with_backend(lambda: m(x, t, ctx)))
        out["ms"] = with_backend(lambda: timed(lambda: m(x, t, ctx), a.reps))
    if cuda:
        out["peakBytes"] = torch.cuda.max_memory_allocated()
    print(f"torch dit eager: {out['ms']['median']:.1f} ms ({out.get('sdpa_backend')})", flush=True)
    del m, x, t, ctx
    return out


def dit_compile():
    global SDPA_BACKEND
    c = dit_cfg
    out = {"mode": "default"}
    if not hasattr(torch, "compile"):
        return {"error": f"torch {torch.__version__} has no torch.compile"}
    if cuda and wt.sdpa is sdpa_fast:
        L = S["f"] * S["h"] // 2 * S["w"] // 2
        SDPA_BACKEND, out["sdpa_backends_ms"] = pick_backend(L, c.num_attention_heads, c.attention_head_dim)
        out["sdpa_backend"] = SDPA_BACKEND
    m = build(wt.WanTransformer, c)
    x, t, ctx = dit_inputs(c)
    cm = torch.compile(m)
    with torch.inference_mode():
        t0 = time.time()
        y = with_backend(lambda: cm(x, t, ctx))
        sync()
        out["compileS"] = time.time() - t0  # first call: tracing + Inductor + autotune + one run
        out["check"] = check(y)
        rec["dit_compile"] = out  # kept if the timing below runs out of time
        save()
        ye = with_backend(lambda: m(x, t, ctx)).float()
        out["relDiffVsEager"] = float((y.float() - ye).norm() / ye.norm())
        del ye
        del y
        print(f"torch.compile first call {out['compileS']:.1f} s", flush=True)
        out["ms"] = with_backend(lambda: timed(lambda: cm(x, t, ctx), a.reps))
    print(f"torch dit compiled: {out['ms']['median']:.1f} ms", flush=True)
    del m, cm, x, t, ctx
    return out


def t5():
    c = t5_cfg
    m = build(UMT5Encoder, c)
    torch.manual_seed(5)
    ids = torch.randint(2, c.vocab_size, (1, S["text"]), device=dev)
    mask = torch.ones(1, S["text"], dtype=torch.long, device=dev)
    out = {}
    with torch.inference_mode():
        out["check"] = check(m(ids, mask))
        out["ms"] = timed(lambda: m(ids, mask), max(a.reps, 10), warm=2)
    print(f"torch umt5: {out['ms']['median']:.2f} ms", flush=True)
    del m
    return out


def vae(dtype):
    def run():
        c = vae_cfg
        m = on_device(WanVAE, c).to(dtype).eval()
        torch.manual_seed(6)
        zn = torch.randn(1, c.z_dim, S["f"], S["h"], S["w"], device=dev, dtype=dtype)
        z = m.denormalize_latents(zn)  # the reference decodes un-normalised latents
        out = {"dtype": str(dtype)}
        with torch.inference_mode():
            t0 = time.time()
            m.decode(z[:, :, :2])  # warm-up: both cache states of every layer, cuDNN autotune
            sync()
            out["warmupMs"] = (time.time() - t0) * 1e3
            if cuda:
                torch.cuda.reset_peak_memory_stats()
                out["inUseBefore"] = torch.cuda.memory_allocated()
            ms, y = once(lambda: m.decode(z))
            r = out["ms"] = {"median": ms, "all": [ms]}
            if cuda:
                out["peakBytes"] = torch.cuda.max_memory_allocated()
                out["peakDeltaBytes"] = out["peakBytes"] - out["inUseBefore"]
                out["peakReservedBytes"] = torch.cuda.max_memory_reserved()
            out["check"] = check(y)
            out["outShape"] = list(y.shape)
            del y
        print(f"torch vae {dtype}: {r['median']:.0f} ms, peak {out.get('peakBytes', 0) / 2**30:.2f} GiB", flush=True)
        del m
        return out

    return run


if a.part == "eager" and a.ti2v:  # the DiT step and the bf16 VAE decode (f32 is not what the bench compares)
    section("dit_eager", dit_eager)
    section("vae_bf16", vae(torch.bfloat16 if cuda else torch.float32))
elif a.part == "eager":
    section("ceiling", ceiling)
    print(f"ceiling: {rec['ceiling'].get('tflops', 0):.0f} TFLOP/s", flush=True)
    section("dit_eager", dit_eager)
    section("t5", t5)
    section("vae_f32", vae(torch.float32))
    section("vae_bf16", vae(torch.bfloat16 if cuda else torch.float32))
elif a.part == "dit":  # the DiT alone (ceiling + eager)
    section("ceiling", ceiling)
    print(f"ceiling: {rec['ceiling'].get('tflops', 0):.0f} TFLOP/s", flush=True)
    section("dit_eager", dit_eager)
else:
    section("dit_compile", dit_compile)
rec["totalS"] = time.time() - T0
save()
