#!/usr/bin/env python3
"""The mma.sync implicit-GEMM conv3d (TESSERA_CUDA_CONV=igemm) against the older wmma kernel and
PyTorch's F.conv3d, through the kernel benchmark's own pieces (cases.py manifest, torch_bench.py,
bench.mjs); driven by scripts/gpu/conv-igemm.sh on the GPU host.

  python3 conv_igemm.py manifest --in M.json --out C.json
      keeps the conv3d cases of cases.py (or of cases.py --small: tiny f32 shapes for the CPU smoke test) (the Wan-VAE decoder's causal 3x3x3 convs) and adds the
      decoder's other convs at 480x832 (conv_in 16->384, the time upsampling conv 3x1x1
      384->768, the 2D 3x3 convs after each spatial upsampling, a 1x1x1 shortcut, the RGB head
      96->3) and one stride-2 3x3 conv (the encoder's spatial downsampling, with symmetric padding).
  python3 conv_igemm.py summary --manifest C.json --torch torch.json --ours TAG=ours.json ...
      --json OUT.json [--meta K=V ...]
      attn_wgmma.py's summary (one record per case: PyTorch's best candidate and every tagged run
      of ours), plus per record the ratios of each tag's time to PyTorch's and to the tag "old".
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attn_wgmma  # noqa: E402
from cases import ref_stride  # noqa: E402

# (name, set, cin, cout, frames, H, W, (kt, kh, kw), stride, padHW, cached frames)
EXTRA = [
    ("conv3d.conv_in.16to384", "60x104x1f", 16, 384, 1, 60, 104, (3, 3, 3), (1, 1, 1), (1, 1), 2),
    ("conv3d.time_up.384to768.k311", "60x104x1f", 384, 768, 1, 60, 104, (3, 1, 1), (1, 1, 1), (0, 0), 2),
    ("conv2d.up.384to192", "120x208x2f", 384, 192, 2, 120, 208, (1, 3, 3), (1, 1, 1), (1, 1), 0),
    ("conv3d.shortcut.192to384.k111", "120x208x2f", 192, 384, 2, 120, 208, (1, 1, 1), (1, 1, 1), (0, 0), 0),
    ("conv2d.up.192to96", "480x832x4f", 192, 96, 4, 480, 832, (1, 3, 3), (1, 1, 1), (1, 1), 0),
    ("conv3d.head.96to3", "480x832x4f", 96, 3, 4, 480, 832, (3, 3, 3), (1, 1, 1), (1, 1), 2),
    ("conv2d.stride2.192to192", "240x416x4f", 192, 192, 4, 240, 416, (1, 3, 3), (1, 2, 2), (1, 1), 0),
]


def extra_cases(ref_dir, small=False):
    out = []
    seed = 20_000
    dtype, esize = ("f32", 4) if small else ("bf16", 2)
    for name, tag, cin, cout, T, H, W, k, stride, pad, P in EXTRA:
        if small:  # the CPU smoke test: tiny images, a quarter of the channels (multiples of 8 kept)
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
        flops = 2 * rows * cout * cin * kt * kh * kw
        nbytes = ((T + P) * H * W * cin + cout * cin * kt * kh * kw + rows * cout) * esize
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
            "flops": flops,
            "bytes": nbytes,
            "unit": "TFLOP/s",
            "shape": f"x 1x{T}x{H}x{W}x{cin}" + (f" + {P} cached frames" if P else "")
            + f", w {cout}x{cin}x{kt}x{kh}x{kw}" + (f", stride {stride[1]}" if stride[1] > 1 else ""),
            "ref": os.path.join(ref_dir, full.replace("/", "_").replace("@", "_at_") + ".f32"),
        })
    return out


def manifest(a):
    with open(a.inp) as f:
        m = json.load(f)
    keep = [c for c in m["cases"] if c["kind"] == "conv3d"]
    m["cases"] = keep + extra_cases(m["refDir"], m.get("small", False))
    with open(a.out, "w") as f:
        json.dump(m, f, indent=1)
    print(f"{len(m['cases'])} conv cases -> {a.out}")


CL = "F.conv3d(channels_last_3d)"


def summary(a):
    attn_wgmma.summary(a)
    with open(a.json) as f:
        res = json.load(f)
    pt = attn_wgmma.load(a.torch).get("cases", {})
    for r in res["records"]:
        t_ms = r["torch"].get("ms")
        cl = next((c for c in pt.get(r["name"], {}).get("candidates", []) if c.get("name") == CL), {})
        cl_ms = cl.get("ms") if cl.get("relErrVsRef", 1) <= 2e-2 else None
        r["torch"]["channelsLast3dMs"] = cl_ms
        old_ms = (r["ours"].get("old") or {}).get("ms")
        for o in r["ours"].values():
            if not o.get("ms"):
                continue
            o["speedupVsTorch"] = t_ms / o["ms"] if t_ms else None
            o["speedupVsTorchChannelsLast3d"] = cl_ms / o["ms"] if cl_ms else None
            o["speedupVsOld"] = old_ms / o["ms"] if old_ms else None
    res["note"] = ("speedupVs*: the other side's time / this tag's (> 1: this tag is faster); VsTorch: PyTorch's best "
                   f"candidate, VsTorchChannelsLast3d: {CL} (bf16, cuDNN). Tags: old = the default conv path (wmma), "
                   "igemm = TESSERA_CUDA_CONV=igemm (mma.sync implicit GEMM, default tile choice), igemm-128xN = "
                   "the same with TESSERA_CUDA_CONV_TILE forcing that block tile.")
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)

    def fmt(v, digits=2):
        return "-" if v is None else f"{v:.{digits}f}"

    print(f"{'case':42} {'igemm ms':>9} {'old ms':>9} {'torch CL ms':>11} {'igemm/torchCL':>13} {'igemm/old':>9}")
    for r in res["records"]:
        o = r["ours"].get("igemm") or {}
        old = r["ours"].get("old") or {}
        print(f"{r['name']:42} {fmt(o.get('ms'), 3):>9} {fmt(old.get('ms'), 3):>9} "
              f"{fmt(r['torch']['channelsLast3dMs'], 3):>11} "
              f"{fmt(o.get('speedupVsTorchChannelsLast3d')):>13} {fmt(o.get('speedupVsOld')):>9}")
    print("(x/y columns: speed-ups, y's time / x's; > 1 means x is faster)")


if __name__ == "__main__":
    attn_wgmma.run_cli(manifest, summary)
