#!/usr/bin/env python3
"""The kernel benchmark's named subsets (scripts/gpu/kernel-bench.sh attention|conv|membound):
which of cases.py's cases each one times, and the summary that sets every tagged run of ours
(one per kernel choice) beside PyTorch's best candidate.

  python3 subsets.py manifest SUBSET --in ALL.json --out M.json
      ALL.json is cases.py's manifest (or cases.py --small's: tiny f32 shapes for the CPU smoke
      run). SUBSET is one of:
        attention  the attention cases except temporal grouping (the Hopper kernel never takes
                   strided groups), plus batch-2 copies of the 81-frame full-attention cases
                   (the pipeline's classifier-free-guidance batch), with their own seeds;
        conv       the Wan-VAE decoder's causal 3x3x3 convs and its other convs at 480x832
                   (conv_in 16->384, the 3x1x1 time upsampling 384->768, the 2D 3x3 convs after
                   each spatial upsampling, a 1x1x1 shortcut, the RGB head 96->3) and one
                   stride-2 3x3 conv (the encoder's spatial downsampling);
        membound   temporal attention, LayerNorm + modulate and the gated residual.
  python3 subsets.py summary --manifest M.json --torch torch.json --ours TAG=ours.json ...
      --json OUT.json [--meta K=V ...]
      one record per case: PyTorch's best candidate and every tagged run of ours (ms, TFLOP/s
      or GB/s, relative error against PyTorch's output, pass, speed-up against PyTorch); conv
      records also carry F.conv3d(channels_last_3d)'s time. Prints the table.
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import ref_stride  # noqa: E402

# The decoder's convs beside cases.py's four 3x3x3 ones:
# (name, set, cin, cout, frames, H, W, (kt, kh, kw), stride, padHW, cached frames)
CONV_EXTRA = [
    ("conv3d.conv_in.16to384", "60x104x1f", 16, 384, 1, 60, 104, (3, 3, 3), (1, 1, 1), (1, 1), 2),
    ("conv3d.time_up.384to768.k311", "60x104x1f", 384, 768, 1, 60, 104, (3, 1, 1), (1, 1, 1), (0, 0), 2),
    ("conv2d.up.384to192", "120x208x2f", 384, 192, 2, 120, 208, (1, 3, 3), (1, 1, 1), (1, 1), 0),
    ("conv3d.shortcut.192to384.k111", "120x208x2f", 192, 384, 2, 120, 208, (1, 1, 1), (1, 1, 1), (0, 0), 0),
    ("conv2d.up.192to96", "480x832x4f", 192, 96, 4, 480, 832, (1, 3, 3), (1, 1, 1), (1, 1), 0),
    ("conv3d.head.96to3", "480x832x4f", 96, 3, 4, 480, 832, (3, 3, 3), (1, 1, 1), (1, 1), 2),
    ("conv2d.stride2.192to192", "240x416x4f", 192, 192, 4, 240, 416, (1, 3, 3), (1, 2, 2), (1, 1), 0),
]
BATCH2 = ("attn.full.d128@81f", "attn.full.rope.d128@81f", "attn.full.d64@81f")
MEMBOUND = re.compile(r"attn\.temporal|layernorm|gated_residual")
CHANNELS_LAST = "F.conv3d(channels_last_3d)"


def ref_path(ref_dir, name):
    return os.path.join(ref_dir, name.replace("/", "_").replace("@", "_at_") + ".f32")


def conv_extra(ref_dir, small=False):
    out = []
    seed = 20_000
    dtype, esize = ("f32", 4) if small else ("bf16", 2)
    for name, tag, cin, cout, T, H, W, k, stride, pad, P in CONV_EXTRA:
        if small:  # the CPU smoke run: tiny images, a quarter of the channels (multiples of 8 kept)
            H, W, T = 5 + H % 3, 7 + W % 2, min(T, 2)
            cin, cout = max(8, cin // 4), max(3, cout // 4)
            tag = "small"
        kt, kh, kw = k
        Ho = (H + 2 * pad[0] - kh) // stride[1] + 1
        Wo = (W + 2 * pad[1] - kw) // stride[2] + 1
        Fo = T  # causal: kt - 1 frames in front (prev and zeros), stride 1 in time
        ins = [{"name": "x", "shape": [1, T, H, W, cin]}]
        if P:
            ins.append({"name": "prev", "shape": [1, P, H, W, cin]})
        ins += [{"name": "w", "shape": [cout, cin, kt, kh, kw]}, {"name": "b", "shape": [cout]}]
        for i in ins:
            seed += 1
            i["seed"] = seed
        rows = Fo * Ho * Wo
        full = f"{name}@{tag}"
        out.append({
            "name": full,
            "op": name,
            "set": tag,
            "kind": "conv3d",
            "dtype": dtype,
            "params": {"cin": cin, "cout": cout, "padHW": list(pad), "stride": list(stride)},
            "inputs": ins,
            "outShape": [1, Fo, Ho, Wo, cout],
            "rowLen": cout,
            "rows": rows,
            "refStride": ref_stride(rows, cout),
            "flops": 2 * rows * cout * cin * kt * kh * kw,
            "bytes": ((T + P) * H * W * cin + cout * cin * kt * kh * kw + rows * cout) * esize,
            "unit": "TFLOP/s",
            "shape": f"x 1x{T}x{H}x{W}x{cin}" + (f" + {P} cached frames" if P else "")
            + f", w {cout}x{cin}x{kt}x{kh}x{kw}" + (f", stride {stride[1]}" if stride[1] > 1 else ""),
            "ref": ref_path(ref_dir, full),
        })
    return out


def batch2(case, seed):
    b2 = json.loads(json.dumps(case))
    b2["name"] = case["name"].replace("@81f", "@81f.b2")
    b2["set"] = "81f.b2"
    for i in b2["inputs"]:
        i["shape"][0] = 2
        seed += 1
        i["seed"] = seed
    b2["outShape"][0] = 2
    b2["rows"] = case["rows"] * 2
    b2["refStride"] = ref_stride(b2["rows"], b2["rowLen"])
    b2["flops"] = case["flops"] * 2
    b2["bytes"] = case["bytes"] * 2
    b2["shape"] = case["shape"].replace("q 1x", "q 2x").replace("kv 1x", "kv 2x")
    b2["ref"] = case["ref"].replace("_at_81f", "_at_81f.b2")
    return b2, seed


def select(subset, m):
    cases = m["cases"]
    if subset == "attention":
        keep = [c for c in cases if c["kind"] == "attention" and "temporal" not in c["name"]]
        extra, seed = [], 9_000
        for c in keep:
            if c["name"] in BATCH2:
                b2, seed = batch2(c, seed)
                extra.append(b2)
        return keep + extra
    if subset == "conv":
        return [c for c in cases if c["kind"] == "conv3d"] + conv_extra(m["refDir"], m.get("small", False))
    if subset == "membound":
        return [c for c in cases if MEMBOUND.match(c["name"])]
    raise SystemExit(f"subsets.py: unknown subset '{subset}'; use attention, conv or membound")


def manifest(a):
    with open(a.inp) as f:
        m = json.load(f)
    m["cases"] = select(a.subset, m)
    m["subset"] = a.subset
    with open(a.out, "w") as f:
        json.dump(m, f, indent=1)
    print(f"{len(m['cases'])} {a.subset} cases -> {a.out}")


def load(path):
    if not path or not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def rate(case, ms):
    if not ms:
        return None
    if case["unit"] == "TFLOP/s":
        return case["flops"] / (ms * 1e-3) / 1e12
    return case["bytes"] / (ms * 1e-3) / 1e9


def channels_last_ms(torch_case):
    c = next((c for c in torch_case.get("candidates", []) if c.get("name") == CHANNELS_LAST), {})
    return c.get("ms") if c.get("relErrVsRef", 1) <= 2e-2 else None


def summary(a):
    man = load(a.manifest)
    pt = load(a.torch)
    runs = []
    for spec in a.ours:
        tag, path = spec.split("=", 1)
        runs.append((tag, load(path)))
    meta = dict(kv.split("=", 1) for kv in (a.meta or []))
    records = []
    for c in man.get("cases", []):
        p = pt.get("cases", {}).get(c["name"], {})
        t_ms = p.get("bestMs")
        rec = {
            "name": c["name"],
            "shape": c["shape"],
            "unit": c["unit"],
            "flops": c["flops"],
            "bytes": c["bytes"],
            "torch": {"best": p.get("best"), "ms": t_ms, "rate": rate(c, t_ms)},
            "ours": {},
        }
        cl_ms = channels_last_ms(p) if c["kind"] == "conv3d" else None
        if c["kind"] == "conv3d":
            rec["torch"]["channelsLast3dMs"] = cl_ms
        for tag, side in runs:
            o = side.get("cases", {}).get(c["name"])
            if o is None:
                continue
            ms = o.get("ms")
            r = {
                "ms": ms,
                "minMs": o.get("minMs"),
                "maxMs": o.get("maxMs"),
                "rate": rate(c, ms),
                "relErrVsTorch": o.get("relErr"),
                "pass": o.get("pass"),
                "speedupVsTorch": t_ms / ms if t_ms and ms else None,
                **({"error": o["error"]} if "error" in o else {}),
                **({"skipped": o["skipped"]} if "skipped" in o else {}),
            }
            if c["kind"] == "conv3d":
                r["speedupVsTorchChannelsLast3d"] = cl_ms / ms if cl_ms and ms else None
            rec["ours"][tag] = r
        records.append(rec)
    out = {
        **meta,
        "subset": man.get("subset"),
        "torch": {k: pt.get(k) for k in ("torch", "cuda", "cudnn", "device", "timing")},
        "ceilings": pt.get("ceilings"),
        "timing": "median of 15 samples, each N back-to-back launches between two synchronizes (N so a sample "
                  "lasts ~25 ms), after 3 warm-up launches; the same on both sides (bench.mjs / torch_bench.py)",
        "note": "speedupVs*: PyTorch's time / this tag's (> 1: ours is faster); VsTorch: PyTorch's best candidate, "
                f"VsTorchChannelsLast3d: {CHANNELS_LAST} (conv cases). The tags are kernel choices; 'tags' says "
                "which environment each ran under.",
        "records": records,
    }
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
    print_table(records, [t for t, _ in runs])


def print_table(records, tags):
    print(f"{'case':40} {'unit':7} {'torch':>16}" + "".join(f" {t:>19}" for t in tags))
    for r in records:
        t = r["torch"]
        line = f"{r['name']:40} {r['unit']:7} "
        line += f"{t['ms']:7.3f}ms {t['rate']:6.1f}" if t["ms"] else f"{'-':>16}"
        for tag in tags:
            o = r["ours"].get(tag)
            if not o or not o.get("ms"):
                line += f" {(o or {}).get('error', (o or {}).get('skipped', '-'))[:19]:>19}"
                continue
            flag = "" if o.get("pass") else "!"
            line += f" {o['ms']:7.3f}ms {o['rate']:6.1f}{flag:1}  "
        print(line)
    print("(rate: TFLOP/s or GB/s per the unit; '!' = failed the check against PyTorch's output)")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("manifest")
    m.add_argument("subset", choices=["attention", "conv", "membound"])
    m.add_argument("--in", dest="inp", required=True)
    m.add_argument("--out", required=True)
    s = sub.add_parser("summary")
    s.add_argument("--manifest", required=True)
    s.add_argument("--torch", required=True)
    s.add_argument("--ours", action="append", default=[])
    s.add_argument("--json", required=True)
    s.add_argument("--meta", action="append")
    a = ap.parse_args()
    manifest(a) if a.cmd == "manifest" else summary(a)


if __name__ == "__main__":
    main()
