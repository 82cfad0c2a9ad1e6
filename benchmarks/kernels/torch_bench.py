#!/usr/bin/env python3
"""PyTorch side of the kernel benchmark: the GPU's ceilings (bf16 GEMM, DRAM copy), then for
every case of the manifest (cases.py) the PyTorch baselines on the same inputs as our side
(regenerated with philox.py), each timed, and a row-sampled reference output for bench.mjs.

  python3 torch_bench.py --manifest M.json --out torch.json [--device cuda|cpu] [--budget S]

Timing is the same on both sides: synchronize, N back-to-back calls, synchronize, wall clock / N;
warm-up first; the median of `--reps` such samples (N chosen so a sample lasts ~--target-ms).
Every candidate's output is checked against the first candidate's (a broken baseline must not
win); the fastest candidate that agrees is the baseline.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import philox  # noqa: E402

TOL = 2e-2
DT = {"bf16": torch.bfloat16, "f32": torch.float32, "f16": torch.float16}


class Timer:
    def __init__(self, device, target_ms, reps, warm):
        self.cuda = device.startswith("cuda")
        self.target = target_ms / 1e3
        self.reps = reps
        self.warm = warm

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def __call__(self, fn):
        for _ in range(self.warm):
            fn()
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        est = max(time.perf_counter() - t0, 1e-6)
        n = max(1, min(2000, math.ceil(self.target / est)))
        samples = []
        for _ in range(self.reps):
            self.sync()
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            self.sync()
            samples.append((time.perf_counter() - t0) / n)
        return {
            "ms": statistics.median(samples) * 1e3,
            "minMs": min(samples) * 1e3,
            "maxMs": max(samples) * 1e3,
            "n": n,
            "reps": self.reps,
        }


def rel_err(out, ref):
    o = out.float().reshape(-1)
    r = ref.float().reshape(-1)
    if not torch.isfinite(o).all():
        return float("nan")
    den = torch.linalg.vector_norm(r.double()).item()
    num = torch.linalg.vector_norm((o - r).double()).item()
    return num / den if den > 0 else num


# ---------------------------------------------------------------- attention helpers
try:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    BACKENDS = [
        ("cudnn", SDPBackend.CUDNN_ATTENTION),
        ("flash", SDPBackend.FLASH_ATTENTION),
        ("efficient", SDPBackend.EFFICIENT_ATTENTION),
    ]
except Exception:  # torch < 2.3 (the CPU smoke test): no backend selection
    sdpa_kernel = None
    BACKENDS = []

HAVE_SDPA = hasattr(F, "scaled_dot_product_attention")


def sdpa(q, k, v, mask=None):
    """q/k/v [N, H, L, D] (any strides with the last dim contiguous)."""
    if HAVE_SDPA:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)


def backend_variants(device):
    """(label, context factory) for each SDPA backend to try."""
    if device.startswith("cuda") and sdpa_kernel is not None:
        return [(n, (lambda b=b: sdpa_kernel([b]))) for n, b in BACKENDS]
    return [("default" if HAVE_SDPA else "math", nullcontext)]


def rope_dims(d):
    s = 2 * (d // 6)
    return d - 2 * s, s, s


def rope_cos_sin(grid, head_dim, device, theta=10000.0):
    """cos, sin [L, head_dim] (float64), tokens in f-h-w order; pair (2i, 2i+1) of an axis block
    turns by pos * theta^(-2i/axis_dim) (training/tessera_ref/wan_transformer.py)."""
    parts_c, parts_s = [], []
    for axis, (n, d) in enumerate(zip(grid, rope_dims(head_dim))):
        inv = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64, device=device) / d)
        ang = torch.arange(n, dtype=torch.float64, device=device)[:, None] * inv[None, :]
        ang = ang.repeat_interleave(2, dim=1)
        shape = [1, 1, 1, d]
        shape[axis] = n
        parts_c.append(torch.cos(ang).view(shape).expand(*grid, d))
        parts_s.append(torch.sin(ang).view(shape).expand(*grid, d))
    return torch.cat(parts_c, -1).reshape(-1, head_dim), torch.cat(parts_s, -1).reshape(-1, head_dim)


def rope_diffusers(x, cos_e, sin_o):
    """diffusers' Wan apply_rotary_emb: x [B, L, H, D] low precision, cos/sin in float32 -> x's dtype."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos_e - x2 * sin_o
    out[..., 1::2] = x1 * sin_o + x2 * cos_e
    return out.type_as(x)


# ---------------------------------------------------------------- candidates per kind
def candidates(case, t, device):
    """[(name, fn, context factory)]: each fn returns the output in our layout."""
    kind, p = case["kind"], case["params"]
    if kind == "attention":
        q, k, v = t["q"], t["k"], t["v"]
        B, L, H, D = q.shape
        grid = p["grid"]
        group = p.get("group", "full")
        out = []
        if group == "full" and not p.get("rope"):
            key_len = p.get("keyLen")
            qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            if key_len is None:
                for name, ctx in backend_variants(device):
                    out.append((f"sdpa[{name}]", lambda: sdpa(qt, kt, vt).transpose(1, 2).reshape(B, L, H, D), ctx))
            else:
                mask = (torch.arange(k.shape[1], device=device) < key_len).view(1, 1, 1, -1)
                ks, vs = kt[:, :, :key_len], vt[:, :, :key_len]
                for name, ctx in backend_variants(device):
                    out.append((f"sdpa+bool-mask[{name}]",
                                lambda: sdpa(qt, kt, vt, mask).transpose(1, 2).reshape(B, L, H, D), ctx))
                for name, ctx in backend_variants(device):
                    out.append((f"sdpa(valid keys sliced)[{name}]",
                                lambda: sdpa(qt, ks, vs).transpose(1, 2).reshape(B, L, H, D), ctx))
        elif group == "full" and p.get("rope"):
            cos, sin = rope_cos_sin(grid, D, device)
            cos_e = cos[None, :, None, 0::2].float().contiguous()
            sin_o = sin[None, :, None, 1::2].float().contiguous()

            def fn():
                qr = rope_diffusers(q, cos_e, sin_o)
                kr = rope_diffusers(k, cos_e, sin_o)
                return sdpa(qr.transpose(1, 2), kr.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2).reshape(B, L, H, D)

            for name, ctx in backend_variants(device):
                out.append((f"rope(f32, diffusers)+sdpa[{name}]", fn, ctx))
        elif group == "spatial":
            Fr, Hh, W = grid
            S = Hh * W

            def fn():
                qs, ks, vs = (x.view(Fr, S, H, D).transpose(1, 2) for x in (q, k, v))
                return sdpa(qs, ks, vs).transpose(1, 2).reshape(B, L, H, D)

            for name, ctx in backend_variants(device):
                out.append((f"permute+sdpa+permute[{name}]", fn, ctx))
        elif group == "temporal":
            Fr, Hh, W = grid
            S = Hh * W

            def fn():
                qs, ks, vs = (x.view(Fr, S, H, D).permute(1, 2, 0, 3) for x in (q, k, v))
                return sdpa(qs, ks, vs).permute(2, 0, 1, 3).reshape(B, L, H, D)

            for name, ctx in backend_variants(device):
                out.append((f"permute+sdpa+permute[{name}]", fn, ctx))
        return out
    if kind == "linear":
        x, w = t["x"], t["w"]
        if p.get("epilogue") == "gelu_tanh":
            b = t["b"]
            return [
                ("F.gelu(F.linear, tanh)", lambda: F.gelu(F.linear(x, w, b), approximate="tanh"), nullcontext),
                ("torch._addmm_activation(gelu)", lambda: torch._addmm_activation(b, x, w.t(), use_gelu=True), nullcontext),
            ]
        wt = w.t()
        return [
            ("torch.matmul", lambda: torch.matmul(x, wt), nullcontext),
            ("F.linear", lambda: F.linear(x, w), nullcontext),
        ]
    if kind == "patch":
        x, w, b = t["x"], t["w"], t["b"]
        _, Fr, H2, W2, C = x.shape
        D = w.shape[0]
        Hh, W = H2 // 2, W2 // 2
        L = Fr * Hh * W
        xt = x.permute(0, 4, 1, 2, 3)  # NCDHW view with channels_last_3d strides
        w_cl = w.contiguous(memory_format=torch.channels_last_3d)
        w2 = w.reshape(D, -1)
        return [
            ("F.conv3d(channels_last_3d)",
             lambda: F.conv3d(xt, w_cl, b, stride=(1, 2, 2)).permute(0, 2, 3, 4, 1).reshape(1, L, D), nullcontext),
            ("unfold(permute)+F.linear",
             lambda: F.linear(x.view(1, Fr, Hh, 2, W, 2, C).permute(0, 1, 2, 4, 6, 3, 5).reshape(L, C * 4), w2, b)
             .view(1, L, D), nullcontext),
        ]
    if kind == "conv3d":
        # Causal in time; params padHW / stride for other convs (default: the VAE's 3x3x3, pad 1).
        x, prev, w, b = t["x"], t.get("prev"), t["w"], t.get("b")
        pad = (0, *p.get("padHW", [1, 1]))
        stride = tuple(p.get("stride", [1, 1, 1]))
        # The cached frames in front, as the chunked decode sees them.
        xc = torch.cat([prev, x], 1) if prev is not None else x
        front = w.shape[2] - 1 - (prev.shape[1] if prev is not None else 0)
        if front > 0:  # zero frames for the rest of the causal padding (untimed, like the cat)
            xc = F.pad(xc, (0, 0, 0, 0, 0, 0, front, 0))
        xt = xc.permute(0, 4, 1, 2, 3)  # channels_last_3d
        w_cl = w.contiguous(memory_format=torch.channels_last_3d)
        xn = xt.contiguous()  # NCDHW
        return [
            ("F.conv3d(channels_last_3d)",
             lambda: F.conv3d(xt, w_cl, b, stride=stride, padding=pad).permute(0, 2, 3, 4, 1), nullcontext),
            ("F.conv3d(NCDHW)",
             lambda: F.conv3d(xn, w, b, stride=stride, padding=pad).permute(0, 2, 3, 4, 1), nullcontext),
        ]
    if kind == "layernorm":
        x, sc, sh = t["x"], t["scale"], t["shift"]
        C = x.shape[-1]
        eps = p["eps"]
        return [
            ("F.layer_norm*(1+scale)+shift",
             lambda: F.layer_norm(x, (C,), eps=eps) * (1 + sc[:, None]) + sh[:, None], nullcontext),
            ("F.layer_norm+addcmul",
             lambda: torch.addcmul(sh[:, None], F.layer_norm(x, (C,), eps=eps), 1 + sc[:, None]), nullcontext),
        ]
    if kind == "gated_residual":
        x, y, g = t["x"], t["y"], t["gate"]
        return [
            ("x+y*gate", lambda: x + y * g[:, None], nullcontext),
            ("torch.addcmul", lambda: torch.addcmul(x, y, g[:, None]), nullcontext),
        ]
    if kind == "rng":
        return [("philox.py", lambda: t["x"], nullcontext)]
    raise ValueError(kind)


def write_ref(case, out):
    r = out.reshape(case["rows"], case["rowLen"])[:: case["refStride"]]
    r.float().contiguous().cpu().numpy().astype(np.float32).tofile(case["ref"])
    return list(r.shape)


def ceilings(device, timer):
    res = {}
    if not device.startswith("cuda"):
        return res
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    m = timer(lambda: torch.matmul(a, b))
    res["gemm"] = {"what": "torch.matmul bf16 8192^3, random data", "ms": m["ms"], "TFLOP/s": 2 * n**3 / m["ms"] / 1e9,
                   "minMs": m["minMs"], "maxMs": m["maxMs"]}
    del a, b
    nel = 1 << 30  # 2 GiB of bf16
    src = torch.empty(nel, device=device, dtype=torch.bfloat16).normal_()
    dst = torch.empty_like(src)
    m = timer(lambda: dst.copy_(src))
    res["dram"] = {"what": "device-to-device copy of 2 GiB (bytes read + written)", "ms": m["ms"],
                   "GB/s": 2 * nel * 2 / m["ms"] / 1e6, "minMs": m["minMs"], "maxMs": m["maxMs"]}
    del src, dst
    torch.cuda.empty_cache()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--budget", type=float, default=1e9, help="seconds; later cases are skipped past it")
    ap.add_argument("--target-ms", type=float, default=25.0)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    t_start = time.time()
    man = json.load(open(a.manifest))
    dev = a.device
    timer = Timer(dev, a.target_ms, a.reps, a.warm)
    if dev.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    res = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if dev.startswith("cuda") else None,
        "device": torch.cuda.get_device_name(0) if dev.startswith("cuda") else "cpu",
        "timing": f"median of {a.reps} samples, each N back-to-back calls between two synchronizes "
                  f"(N so a sample lasts ~{a.target_ms} ms), after {a.warm} warm-up calls",
        "ceilings": {},
        "cases": {},
    }

    def save():
        with open(a.out + ".tmp", "w") as f:
            json.dump(res, f, indent=1)
        os.replace(a.out + ".tmp", a.out)

    try:
        res["ceilings"] = ceilings(dev, timer)
    except Exception as e:  # noqa: BLE001
        res["ceilings"] = {"error": repr(e)}
    for k, v in res["ceilings"].items():
        print(f"ceiling {k}: {v}", flush=True)
    save()

    for case in man["cases"]:
        name = case["name"]
        if a.only and a.only not in name:
            continue
        r = {"candidates": []}
        res["cases"][name] = r
        if time.time() - t_start > a.budget:
            r["skipped"] = "time budget"
            save()
            continue
        t0 = time.time()
        dtype = DT[case["dtype"]]
        try:
            t = {i["name"]: philox.randn(i["shape"], i["seed"], dtype=dtype, device=dev) for i in case["inputs"]}
            ref = None
            for cname, fn, ctx in candidates(case, t, dev):
                c = {"name": cname}
                r["candidates"].append(c)
                try:
                    with ctx():
                        out = fn()
                        if ref is None:
                            ref = out.detach().clone()
                            r["refFrom"] = cname
                            r["refSampleShape"] = write_ref(case, ref)
                            c["relErrVsRef"] = 0.0
                        else:
                            c["relErrVsRef"] = rel_err(out, ref)
                        del out
                        if not case.get("checkOnly"):
                            c.update(timer(fn))
                except Exception as e:  # noqa: BLE001
                    c["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            good = [c for c in r["candidates"] if "ms" in c and c.get("relErrVsRef", 1) <= TOL]
            if good:
                best = min(good, key=lambda c: c["ms"])
                r["best"] = best["name"]
                r["bestMs"] = best["ms"]
            del t, ref
        except Exception as e:  # noqa: BLE001
            r["error"] = f"{type(e).__name__}: {e}"
        if dev.startswith("cuda"):
            torch.cuda.empty_cache()
        r["wallS"] = time.time() - t0
        line = " | ".join(
            f"{c['name']} {c['ms']:.4f} ms" if "ms" in c else f"{c['name']} {c.get('error', 'check only')}"
            for c in r["candidates"])
        print(f"[torch] {name}: {line}" + (f" ERROR {r['error']}" if "error" in r else ""), flush=True)
        save()
    res["wallS"] = time.time() - t_start
    save()


if __name__ == "__main__":
    main()
