"""Merges ours-{dit,t5,vae,vae-bf16}.json (ours.mjs) and torch.json / compile.json (torch_e2e.py) into
e2e.json (one record per measurement: name, ours, baseline, baselineName, unit, ratio) and e2e.md.
ratio = baseline time / our time for times (> 1: we are faster), our / baseline otherwise (see unit)."""

from __future__ import annotations

import argparse
import json
import os

p = argparse.ArgumentParser()
p.add_argument("--dir", required=True, help="folder with ours-dit.json, ours-t5.json, ours-vae.json, torch.json, compile.json")
p.add_argument("--json", required=True)
p.add_argument("--md", required=True)
p.add_argument("--commit", default=os.environ.get("COMMIT", "unknown"))
p.add_argument("--date", default=None)
a = p.parse_args()


def load(name):
    try:
        with open(os.path.join(a.dir, name)) as f:
            return json.load(f)
    except Exception as e:  # noqa: BLE001
        return {"missing": f"{name}: {type(e).__name__}: {e}"}


od, ot, ov = load("ours-dit.json"), load("ours-t5.json"), load("ours-vae.json")
ovb = load("ours-vae-bf16.json")
tt, tc = load("torch.json"), load("compile.json")
GiB = 2**30


def g(d, *path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def err(d, key):
    v = g(d, key)
    if isinstance(v, dict):
        return v.get("error") or v.get("skipped")
    return d.get("missing") if isinstance(d, dict) else None


recs = []


def add(name, ours, base, base_name, unit, lower_is_better=True, note=None):
    ratio = None
    if isinstance(ours, (int, float)) and isinstance(base, (int, float)) and ours and base:
        ratio = base / ours if lower_is_better else ours / base
    r = {"name": name, "ours": ours, "baseline": base, "baselineName": base_name, "unit": unit, "ratio": ratio}
    if note:
        r["note"] = note
    recs.append(r)


flops = g(tt, "flops", "total") or g(tc, "flops", "total")
ceil = g(tt, "ceiling", "tflops")
backend = g(tt, "dit_eager", "sdpa_backend") or "?"
torch_v = tt.get("torch", "?")

o_dit = g(od, "ms", "median")
e_dit = g(tt, "dit_eager", "ms", "median")
c_dit = g(tc, "dit_compile", "ms", "median")
add("dit.step (batch 2 = both guidance branches, 32760 tokens, bf16)", o_dit, e_dit,
    f"PyTorch {torch_v} eager, tessera_ref + SDPA[{backend}]", "ms", note=err(tt, "dit_eager"))
add("dit.step (batch 2 = both guidance branches, 32760 tokens, bf16)", o_dit, c_dit,
    f"PyTorch {torch_v} torch.compile(mode=default), SDPA[{g(tc, 'dit_compile', 'sdpa_backend') or '?'}]", "ms",
    note=err(tc, "dit_compile"))
g_dit = g(od, "graph", "median")
if g_dit is not None:
    same = g(od, "graphEqualsEager")
    gnote = f"captured in {g(od, 'graphCaptureMs') or 0:.0f} ms; output {'equal to' if same else 'DIFFERENT from'} eager, bit for bit"
    add("dit.step as a CUDA graph replay (same call, same inputs)", g_dit, e_dit,
        f"PyTorch {torch_v} eager, tessera_ref + SDPA[{backend}]", "ms", note=gnote)
    add("dit.step as a CUDA graph replay (same call, same inputs)", g_dit, c_dit,
        f"PyTorch {torch_v} torch.compile(mode=default)", "ms", note=err(tc, "dit_compile"))
    add("dit.step as a CUDA graph replay vs our eager step", g_dit, o_dit, "ours, op by op", "ms")
add("dit.torch_compile.first_call (compile time, one-off)", None, g(tc, "dit_compile", "compileS"),
    "torch.compile first call: trace + Inductor + one run", "s", note=err(tc, "dit_compile"))
if flops and ceil:
    floor_ms = flops / (ceil * 1e12) * 1e3
    frac = lambda ms: floor_ms / ms if ms else None  # noqa: E731
    add("dit.step fraction of the bf16 GEMM floor (FLOPs / ceiling / time)", frac(o_dit), frac(e_dit),
        "PyTorch eager", "fraction", lower_is_better=False,
        note=f"{flops / 1e12:.1f} TFLOP per step over {ceil:.0f} TFLOP/s = {floor_ms:.0f} ms floor")
    add("dit.step fraction of the bf16 GEMM floor (FLOPs / ceiling / time)", frac(o_dit), frac(c_dit),
        "PyTorch torch.compile", "fraction", lower_is_better=False)
    if g_dit is not None:
        add("dit.step as a CUDA graph: fraction of the bf16 GEMM floor", frac(g_dit), frac(c_dit),
            "PyTorch torch.compile", "fraction", lower_is_better=False)
add("text.umt5-xxl (one prompt, all 512 positions, bf16)", g(ot, "full", "median"), g(tt, "t5", "ms", "median"),
    f"PyTorch {torch_v} eager, tessera_ref UMT5Encoder (HF attention form)", "ms", note=err(tt, "t5"))
add(f"text.umt5-xxl (pipeline default: padding trimmed, {ot.get('promptLen', '?')} of 512 tokens run)",
    g(ot, "trimmed", "median"), g(tt, "t5", "ms", "median"), "PyTorch eager, all 512 positions (as HF runs it)", "ms")
add("vae.decode (21x60x104 latent -> 81x480x832, chunked, f32)", g(ov, "ms", "median"), g(tt, "vae_f32", "ms", "median"),
    "PyTorch eager f32 (cuDNN TF32 convs), tessera_ref WanVAE.decode", "ms", note=err(tt, "vae_f32"))
add("vae.decode (21x60x104 latent -> 81x480x832, chunked; ours f32)", g(ov, "ms", "median"),
    g(tt, "vae_bf16", "ms", "median"), "PyTorch eager bf16 (for reference)", "ms", note=err(tt, "vae_bf16"))
b = lambda v: v / GiB if isinstance(v, (int, float)) else None  # noqa: E731
add("vae.decode peak GPU memory (whole process: weights + latent + decode)", b(g(ov, "peakBytes")),
    b(g(tt, "vae_f32", "peakBytes")), "PyTorch f32 max_memory_allocated", "GiB")
add("vae.decode peak GPU memory above what was in use before the decode", b(g(ov, "peakDeltaBytes")),
    b(g(tt, "vae_f32", "peakDeltaBytes")), "PyTorch f32", "GiB")
add("vae.decode peak GPU memory above what was in use before the decode", b(g(ov, "peakDeltaBytes")),
    b(g(tt, "vae_bf16", "peakDeltaBytes")), "PyTorch bf16", "GiB")
add("vae.decode (21x60x104 latent -> 81x480x832, chunked, bf16)", g(ovb, "ms", "median"),
    g(tt, "vae_bf16", "ms", "median"), "PyTorch eager bf16 (cuDNN convs), tessera_ref WanVAE.decode", "ms",
    note=err(tt, "vae_bf16"))
add("vae.decode bf16 peak GPU memory above what was in use before the decode", b(g(ovb, "peakDeltaBytes")),
    b(g(tt, "vae_bf16", "peakDeltaBytes")), "PyTorch bf16", "GiB")

# The whole generation: ours measured (wan-e2e.json); PyTorch composed from its stage times in
# this run (two prompts' text states — prompt and negative prompt, 512 positions each as HF runs
# them — + steps x DiT step + bf16 decode; its scheduler is left out, which favours it).
gen = load("wan-e2e.json")
gt = gen.get("timings") or {}
if gt.get("total"):
    n = gen.get("steps", 50)
    t5_one, vae_ms = g(tt, "t5", "ms", "median"), g(tt, "vae_bf16", "ms", "median")
    t5_ms = 2 * t5_one if t5_one is not None else None
    sg = gen.get("stepGraph") or {}
    what = f"{n} UniPC steps, guidance 5, 832x480, 81 frames, VAE bf16; step graph {sg.get('state', '?')} ({sg.get('replays', 0)} replays)"
    for label, step_ms in (("eager", e_dit), ("torch.compile steady state", c_dit)):
        composed = t5_ms + n * step_ms + vae_ms if None not in (t5_ms, step_ms, vae_ms) else None
        add(f"generation.total ({what})", gt["total"], composed,
            f"PyTorch {label}, composed: 2 prompts' text + {n} x DiT step + bf16 decode", "ms")
    cs = g(tc, "dit_compile", "compileS")
    if cs and t5_ms and c_dit and vae_ms:
        add(f"generation.total ({what})", gt["total"], t5_ms + n * c_dit + vae_ms + cs * 1e3,
            "PyTorch torch.compile, composed, counting its first-call compile", "ms")
    add("generation.text (umT5-XXL, prompt + negative prompt, tokenizer included)", gt.get("text"), t5_ms,
        "PyTorch eager, 2 x one prompt at 512 positions (encoder only)", "ms")
    add("generation.denoise per step (scheduler included)", gt.get("step"), e_dit, "PyTorch eager DiT step alone", "ms")
    add("generation.decode (VAE bf16)", gt.get("decode"), vae_ms, "PyTorch eager bf16 decode", "ms")
    add("generation peak GPU memory (weights included)", b(gen.get("peakMemoryBytes")), None, "-", "GiB")

top = {
    "device": (od.get("device") or {}).get("description") or tt.get("gpu"),
    "date": a.date,
    "commit": a.commit,
    "torch": torch_v,
    "cuda": tt.get("cuda"),
    "cudnn": tt.get("cudnn"),
    "ratioMeaning": "ms and GiB: baseline / ours (> 1: we are faster or smaller); fraction: ours / baseline",
    "ceiling": {"bf16GemmTflops": ceil, "range": g(tt, "ceiling", "tflops_range"), "what": g(tt, "ceiling", "what")},
    "ditFlops": g(tt, "flops") or g(tc, "flops"),
    "records": recs,
    "raw": {"ours-gen": gen, "ours-dit": od, "ours-t5": ot, "ours-vae": ov, "ours-vae-bf16": ovb, "torch": tt, "compile": tc},
}
with open(a.json, "w") as f:
    json.dump(top, f, indent=1)


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "fraction":
        return f"{100 * v:.1f}%"
    if unit == "ms":
        return f"{v:,.1f}" if v >= 10 else f"{v:.2f}"
    return f"{v:.2f}"


lines = [
    f"Device: {top['device']}; PyTorch {torch_v} (CUDA {tt.get('cuda')}, cuDNN {tt.get('cudnn')}); commit {a.commit}; {a.date}",
    "",
    f"DiT FLOPs per step (batch 2, 30 blocks, 2 per MAC): {flops / 1e12:.1f} TFLOP" if flops else "DiT FLOPs: -",
    f"bf16 GEMM ceiling (same call): {ceil:.0f} TFLOP/s" if ceil else "ceiling: -",
    "ratio: baseline / ours for ms and GiB (> 1: we are faster or smaller); ours / baseline for fractions.",
    "",
    "| measurement | unit | ours | baseline | ratio | baseline is | note |",
    "|---|---|---:|---:|---:|---|---|",
]
for r in recs:
    note = (r.get("note") or "").replace("|", "/").replace("\n", " ")[:160]
    ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
    lines.append(f"| {r['name']} | {r['unit']} | {fmt(r['ours'], r['unit'])} | {fmt(r['baseline'], r['unit'])} | {ratio} | {r['baselineName']} | {note} |")
with open(a.md, "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
