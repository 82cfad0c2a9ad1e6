#!/usr/bin/env python3
"""Merges the two sides of the kernel benchmark into one record per measurement and a table.

  python3 merge.py --manifest M.json --torch torch.json --ours ours.json [--own ours-own.json]
                   --json OUT.json --md OUT.md

Each record: name, shape, ours, baseline, baselineName, unit, ratio (ours / PyTorch, > 1 = we are
faster), plus times, the fraction of the measured ceiling (bf16 GEMM for TFLOP/s, DRAM copy for
GB/s), our relative error against PyTorch's output, and every PyTorch candidate's time.
"""
import argparse
import json
import os


def load(path):
    if not path or not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def rate(case, ms):
    if ms is None:
        return None
    if case["unit"] == "TFLOP/s":
        return case["flops"] / (ms * 1e-3) / 1e12
    return case["bytes"] / (ms * 1e-3) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--torch", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--own", default=None)
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    a = ap.parse_args()
    man = load(a.manifest)
    pt = load(a.torch)
    ours = load(a.ours)
    own = load(a.own)
    ceil = pt.get("ceilings", {})
    peak_tflops = ceil.get("gemm", {}).get("TFLOP/s")
    peak_gbs = ceil.get("dram", {}).get("GB/s")

    def frac(unit, v):
        if v is None:
            return None
        c = peak_tflops if unit == "TFLOP/s" else peak_gbs
        return v / c if c else None

    records, checks = [], []
    variants = [("", ours)] + ([(" [own GEMM, no cuBLASLt]", own)] if own else [])
    for c in man["cases"]:
        p = pt.get("cases", {}).get(c["name"], {})
        for suffix, side in variants:
            o = side.get("cases", {}).get(c["name"])
            if o is None:
                continue
            if c.get("checkOnly"):
                checks.append({"name": c["name"] + suffix, "shape": c["shape"], "relErr": o.get("relErr"),
                               "pass": o.get("pass"), "what": "our randn vs philox.py (same values expected)",
                               **({"error": o["error"]} if "error" in o else {})})
                continue
            o_ms = o.get("ms")
            b_ms = p.get("bestMs")
            ov, bv = rate(c, o_ms), rate(c, b_ms)
            rec = {
                "name": c["name"] + suffix,
                "shape": c["shape"],
                "ours": ov,
                "baseline": bv,
                "baselineName": (p["best"] if p["best"].startswith("torch") else "torch " + p["best"])
                if p.get("best") else None,
                "unit": c["unit"],
                "ratio": (ov / bv) if ov and bv else None,
                "oursMs": o_ms,
                "baselineMs": b_ms,
                "oursOfCeiling": frac(c["unit"], ov),
                "baselineOfCeiling": frac(c["unit"], bv),
                "relErr": o.get("relErr"),
                "pass": o.get("pass"),
                "oursSpreadMs": [o.get("minMs"), o.get("maxMs")],
                "enqueueMsPerLaunch": o.get("enqueueMsPerLaunch"),
                "flops": c["flops"],
                "bytes": c["bytes"],
                "dtype": c["dtype"],
                "baselineCandidates": [
                    {k: v for k, v in x.items() if k in ("name", "ms", "minMs", "maxMs", "relErrVsRef", "error")}
                    for x in p.get("candidates", [])
                ],
            }
            for key in ("error", "skipped", "reason"):
                if key in o:
                    rec["oursNote" if key != "error" else "oursError"] = o[key]
            for key in ("error", "skipped"):
                if key in p:
                    rec["baselineNote"] = p[key]
            records.append(rec)

    dev = ours.get("device", {}).get("description") or pt.get("device")
    out = {
        "device": dev,
        "date": ours.get("date") or pt.get("date"),
        "commit": ours.get("commit", "unknown"),
        "torch": pt.get("torch"),
        "cuda": pt.get("cuda"),
        "cudnn": pt.get("cudnn"),
        "node": ours.get("node"),
        "cublasLt": ours.get("device", {}).get("hasBlas"),
        "ceilings": ceil,
        "method": {
            "ours": ours.get("timing"),
            "pytorch": pt.get("timing"),
            "inputs": "randn from Tessera's Philox generator, drawn on the GPU by our side and regenerated "
                      "bit-identically by PyTorch (philox.py); B = 1; bf16 everywhere",
            "check": "our output vs the PyTorch baseline's output on the same inputs, rel. L2 error over "
                     "row-sampled outputs (every refStride-th row) plus a NaN/Inf scan of the whole output, "
                     "tolerance 2e-2, done before timing",
            "ratio": "ours / baseline throughput (> 1: we are faster)",
            "ofCeiling": "TFLOP/s over the measured bf16 GEMM ceiling, GB/s over the measured DRAM copy rate",
            "flops": "attention 4*Lq*Lk_valid*H*D (useful pairs only); GEMM/conv 2*MACs",
            "bytes": "each input read once and each output written once",
        },
        "checks": checks,
        "records": records,
    }
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)

    def fmt(v, d=1):
        return "-" if v is None else f"{v:.{d}f}"

    def pct(v):
        return "-" if v is None else f"{100 * v:.0f}%"

    def spread(key, unit_scale):
        c = ceil.get(key, {})
        if not c.get("minMs") or not c.get("maxMs"):
            return ""
        return f" (median; samples {fmt(unit_scale / c['maxMs'], 0)}-{fmt(unit_scale / c['minMs'], 0)})"

    lines = [
        f"Device: {dev}; PyTorch {pt.get('torch')} (CUDA {pt.get('cuda')}, cuDNN {pt.get('cudnn')}); "
        f"Node {ours.get('node')}; commit {out['commit']}; {out['date']}",
        "",
        f"Ceilings: bf16 GEMM {fmt(peak_tflops)} TFLOP/s{spread('gemm', 2 * 8192**3 / 1e9)} "
        f"(torch.matmul 8192^3, random data); DRAM {fmt(peak_gbs, 0)} GB/s{spread('dram', 4 * 2**30 / 1e6)} "
        f"(2 GiB device-to-device copy, read + write). '% ceil' is against the medians, so a cuBLAS GEMM "
        f"can read slightly over 100%. ours/PT > 1: we are faster.",
        "",
        "| case | shape | unit | ours | PyTorch | ours/PT | ours % ceil | PT % ceil | ours ms | PT ms | rel err | PyTorch baseline |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in records:
        err = "-" if r["relErr"] is None else f"{r['relErr']:.1e}" + ("" if r["pass"] else " FAIL")
        note = r.get("oursError") or r.get("oursNote") or ""
        lines.append(
            f"| {r['name']} | {r['shape']} | {r['unit']} | {fmt(r['ours'])} | {fmt(r['baseline'])} | "
            f"{fmt(r['ratio'], 2)} | {pct(r['oursOfCeiling'])} | {pct(r['baselineOfCeiling'])} | "
            f"{fmt(r['oursMs'], 3)} | {fmt(r['baselineMs'], 3)} | {err} | {r['baselineName'] or r.get('baselineNote', '-')}"
            f"{' — ' + note if note else ''} |"
        )
    for c in checks:
        lines.append("")
        lines.append(f"Check {c['name']}: rel err {c['relErr']}, pass {c['pass']} ({c['what']}).")
    md = "\n".join(lines) + "\n"
    with open(a.md, "w") as f:
        f.write(md)
    # Compact table for the log's tail.
    print(f"ceilings: gemm {fmt(peak_tflops)} TFLOP/s, dram {fmt(peak_gbs, 0)} GB/s")
    print(f"{'case':46s} {'unit':7s} {'ours':>8s} {'torch':>8s} {'ratio':>6s} {'%ceil':>6s} {'err':>9s} baseline")
    for r in records:
        err = "-" if r["relErr"] is None else f"{r['relErr']:.1e}" + ("" if r["pass"] else "!")
        print(f"{r['name'][:46]:46s} {r['unit']:7s} {fmt(r['ours']):>8s} {fmt(r['baseline']):>8s} "
              f"{fmt(r['ratio'], 2):>6s} {pct(r['oursOfCeiling']):>6s} {err:>9s} "
              f"{(r['baselineName'] or '-').removeprefix('torch ')[:40]}{' ' + (r.get('oursError') or '')[:60] if r.get('oursError') else ''}")
    for c in checks:
        print(f"check {c['name']}: relErr {c['relErr']} pass {c['pass']}")


if __name__ == "__main__":
    main()
