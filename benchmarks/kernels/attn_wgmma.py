#!/usr/bin/env python3
"""The Hopper (wgmma) attention kernel against the mma.sync one and PyTorch SDPA, through the
kernel benchmark's own pieces (cases.py manifest, torch_bench.py, bench.mjs); driven by
scripts/gpu/attn-wgmma.sh on the GPU host.

  python3 attn_wgmma.py manifest --in M.json --out A.json
      keeps the attention cases (not temporal) and adds batch-2 copies of the 81-frame full-attention cases
      (the pipeline's classifier-free-guidance batch), with their own seeds and references.
  python3 attn_wgmma.py summary --manifest A.json --torch torch.json --ours TAG=ours.json ...
      --json OUT.json [--meta K=V ...]
      one record per case: PyTorch's best candidate and every tagged run of ours (ms, TFLOP/s
      or GB/s, relative error against PyTorch's output, pass), printed as a table.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import ref_stride  # noqa: E402


def manifest(a):
    with open(a.inp) as f:
        m = json.load(f)
    # Temporal attention never takes the wgmma kernel (strided groups): left out.
    keep = [c for c in m["cases"] if c["kind"] == "attention" and "temporal" not in c["name"]]
    extra = []
    seed = 9_000
    for c in keep:
        if c["name"] not in ("attn.full.d128@81f", "attn.full.rope.d128@81f", "attn.full.d64@81f"):
            continue
        b2 = json.loads(json.dumps(c))
        b2["name"] = c["name"].replace("@81f", "@81f.b2")
        b2["set"] = "81f.b2"
        for i in b2["inputs"]:
            i["shape"][0] = 2
            seed += 1
            i["seed"] = seed
        b2["outShape"][0] = 2
        b2["rows"] = c["rows"] * 2
        b2["refStride"] = ref_stride(b2["rows"], b2["rowLen"])
        b2["flops"] = c["flops"] * 2
        b2["bytes"] = c["bytes"] * 2
        b2["shape"] = c["shape"].replace("q 1x", "q 2x").replace("kv 1x", "kv 2x")
        b2["ref"] = c["ref"].replace("_at_81f", "_at_81f.b2")
        extra.append(b2)
    m["cases"] = keep + extra
    with open(a.out, "w") as f:
        json.dump(m, f, indent=1)
    print(f"{len(m['cases'])} attention cases -> {a.out}")


def rate(case, ms):
    if not ms:
        return None
    if case["unit"] == "TFLOP/s":
        return case["flops"] / (ms * 1e-3) / 1e12
    return case["bytes"] / (ms * 1e-3) / 1e9


def load(path):
    if not path or not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


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
        rec = {
            "name": c["name"],
            "shape": c["shape"],
            "unit": c["unit"],
            "flops": c["flops"],
            "bytes": c["bytes"],
            "torch": {"best": p.get("best"), "ms": p.get("bestMs"), "rate": rate(c, p.get("bestMs"))},
            "ours": {},
        }
        for tag, side in runs:
            o = side.get("cases", {}).get(c["name"])
            if o is None:
                continue
            rec["ours"][tag] = {
                "ms": o.get("ms"),
                "minMs": o.get("minMs"),
                "maxMs": o.get("maxMs"),
                "rate": rate(c, o.get("ms")),
                "relErrVsTorch": o.get("relErr"),
                "pass": o.get("pass"),
                **({"error": o["error"]} if "error" in o else {}),
                **({"skipped": o["skipped"]} if "skipped" in o else {}),
            }
        records.append(rec)
    out = {
        **meta,
        "torch": {k: pt.get(k) for k in ("torch", "cuda", "cudnn", "device", "timing")},
        "ceilings": pt.get("ceilings"),
        "timing": "median of 15 samples, each N back-to-back launches between two synchronizes (N so a sample "
                  "lasts ~25 ms), after 3 warm-up launches; the same on both sides (bench.mjs / torch_bench.py)",
        "records": records,
    }
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
    tags = [t for t, _ in runs]
    head = f"{'case':34} {'unit':7} {'torch':>16}" + "".join(f" {t:>19}" for t in tags)
    print(head)
    for r in records:
        t = r["torch"]
        line = f"{r['name']:34} {r['unit']:7} "
        line += f"{t['ms']:7.3f}ms {t['rate']:6.1f}" if t["ms"] else f"{'-':>16}"
        for tag in tags:
            o = r["ours"].get(tag)
            if not o or not o.get("ms"):
                line += f" {(o or {}).get('error', (o or {}).get('skipped', '-'))[:19]:>19}"
                continue
            flag = "" if o.get("pass") else "!"
            line += f" {o['ms']:7.3f}ms {o['rate']:6.1f}{flag:1}"
            line += f"{'':2}"
        print(line)
    print("(rate: TFLOP/s or GB/s per the unit; '!' = failed the check against PyTorch's output)")


def run_cli(manifest_fn, summary_fn):
    """The `manifest` / `summary` command line shared with conv_igemm.py."""
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("manifest")
    m.add_argument("--in", dest="inp", required=True)
    m.add_argument("--out", required=True)
    s = sub.add_parser("summary")
    s.add_argument("--manifest", required=True)
    s.add_argument("--torch", required=True)
    s.add_argument("--ours", action="append", default=[])
    s.add_argument("--json", required=True)
    s.add_argument("--meta", action="append")
    a = ap.parse_args()
    manifest_fn(a) if a.cmd == "manifest" else summary_fn(a)


if __name__ == "__main__":
    run_cli(manifest, summary)
