#!/usr/bin/env python3
"""Golden tensors for LoRA merging: a LoRA in each naming in use, and the Wan
transformer's output with it merged at two strengths, in float64.

On the tiny random transformer of the golden fixtures (its weights and inputs are
read from wan_transformer.safetensors, which make_golden.py writes), this builds
  - wan_lora_peft.safetensors     diffusers / PEFT names (transformer.blocks.0.attn1.to_q.lora_A.weight),
                                  the state dict peft's get_peft_model_state_dict gives, with the
                                  adapter config (r, lora_alpha, alpha_pattern) as diffusers stores it
                                  in the lora_adapter_metadata entry of __metadata__;
  - wan_lora_comfyui.safetensors  ComfyUI / lightx2v names in Wan-AI's original naming
                                  (diffusion_model.blocks.0.self_attn.q.lora_down.weight, .lora_up,
                                  .alpha), a conv LoRA on patch_embedding, and full deltas (.diff on
                                  norm scales and the modulation tables, .diff_b on biases);
  - wan_lora_kohya.safetensors    Kohya / musubi names (lora_unet_blocks_0_self_attn_q.lora_down.weight)
                                  with .alpha;
  - wan_lora_diff.safetensors     full-weight deltas only (.diff, .diff_b, lightx2v's .diff_m);
  - wan_lora.safetensors          output.<case>.velocity for each case (a file at a strength, and all
                                  but PEFT's at once), float64 math on the float32 values stored,
                                  written as float32; __metadata__ names the cases and the base
                                  fixture's sha256.
The merge is written out here from the published rules (W += strength·alpha/rank·up@down, rank the
rows of down, no alpha → alpha = rank; W += strength·diff), and the PEFT case is checked against
peft's own forward (LoRA layers unmerged, scaling = strength·alpha/rank) before anything is written.

Usage (repo root, on a host with torch, peft and numpy):
    python3 training/make_golden_lora.py
writes into packages/core/test-fixtures/golden/ (--out DIR elsewhere; --golden DIR reads the base
fixture from elsewhere). Deterministic: the LoRA values come from numpy's PCG64 stream.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from make_golden import channels_first, channels_last, f32, load, rel_err  # noqa: E402
from tessera_ref import WanTransformer, read_safetensors, write_safetensors  # noqa: E402

FORMAT = "tessera-golden/1"
DEFAULT_GOLDEN = os.path.join(HERE, "..", "packages", "core", "test-fixtures", "golden")
RANK = 4
STRENGTHS = (0.5, 1.0)


def original_to_diffusers(num_layers: int) -> dict[str, str]:
    """Module names in Wan-AI's original naming -> ours (diffusers'), written out from
    diffusers' convert_wan_to_diffusers.py (the engine derives the same from its own table)."""
    m = {
        "patch_embedding": "patch_embedding",
        "text_embedding.0": "condition_embedder.text_embedder.linear_1",
        "text_embedding.2": "condition_embedder.text_embedder.linear_2",
        "time_embedding.0": "condition_embedder.time_embedder.linear_1",
        "time_embedding.2": "condition_embedder.time_embedder.linear_2",
        "time_projection.1": "condition_embedder.time_proj",
        "head.head": "proj_out",
        "head.modulation": "scale_shift_table",
    }
    for i in range(num_layers):
        b = f"blocks.{i}"
        for ours, theirs in (("attn1", "self_attn"), ("attn2", "cross_attn")):
            for o, d in (("q", "to_q"), ("k", "to_k"), ("v", "to_v"), ("o", "to_out.0"), ("norm_q", "norm_q"), ("norm_k", "norm_k")):
                m[f"{b}.{theirs}.{o}"] = f"{b}.{ours}.{d}"
        m[f"{b}.ffn.0"] = f"{b}.ffn.net.0.proj"
        m[f"{b}.ffn.2"] = f"{b}.ffn.net.2"
        m[f"{b}.norm3"] = f"{b}.norm2"  # the cross-attention pre-norm
        m[f"{b}.modulation"] = f"{b}.scale_shift_table"
    return m


class Lora:
    """A LoRA file's tensors (float32, as written) and what each does, in our names."""

    def __init__(self, name: str):
        self.name = name
        self.tensors: dict[str, np.ndarray] = {}
        self.metadata: dict[str, str] = {"format": "pt"}
        # (target tensor, kind, arrays, scale per unit strength)
        self.changes: list[tuple[str, str, tuple[np.ndarray, ...], float]] = []

    def pair(self, key_down: str, key_up: str, target: str, down: np.ndarray, up: np.ndarray, factor: float):
        self.tensors[key_down] = down
        self.tensors[key_up] = up
        self.changes.append((target, "lowrank", (down, up), factor))

    def full(self, key: str, target: str, diff: np.ndarray):
        self.tensors[key] = diff
        self.changes.append((target, "full", (diff,), 1.0))

    def deltas(self, weights: dict[str, np.ndarray], strength: float) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for target, kind, arrays, factor in self.changes:
            w = weights[target]
            if kind == "lowrank":
                down, up = (a.astype(np.float64) for a in arrays)
                d = (up.reshape(up.shape[0], -1) @ down.reshape(down.shape[0], -1)).reshape(w.shape)
                d = strength * factor * d
            else:
                d = strength * arrays[0].astype(np.float64)
                assert d.shape == w.shape, (self.name, target)
            out[target] = out.get(target, 0.0) + d
        return out


def factors(rng, w_shape, rank=RANK, std=0.15):
    """A down [r, in…] and up [out, r, 1…] pair for a weight, float32."""
    down = f32(std * rng.standard_normal((rank, *w_shape[1:])))
    up = f32(std * rng.standard_normal((w_shape[0], rank, *([1] * (len(w_shape) - 2)))))
    return down, up


def build_loras(weights: dict[str, np.ndarray], num_layers: int, seed: int):
    rng = np.random.default_rng([seed, 17])
    o2d = original_to_diffusers(num_layers)
    shape = lambda module, suffix="weight": weights[f"{o2d[module]}.{suffix}"].shape  # noqa: E731

    # ComfyUI / lightx2v: original names, per-module alphas, a conv pair, full deltas.
    comfy = Lora("comfyui")
    lowrank = [
        "blocks.0.self_attn.q",
        "blocks.0.self_attn.o",
        "blocks.1.self_attn.k",
        "blocks.0.cross_attn.v",
        "blocks.1.cross_attn.q",
        "blocks.0.ffn.0",
        "blocks.1.ffn.2",
        "text_embedding.0",
        "time_embedding.2",
        "time_projection.1",
        "head.head",
        "patch_embedding",
    ]
    for i, module in enumerate(lowrank):
        down, up = factors(rng, shape(module))
        alpha = float([2, 4, 8, 1][i % 4])
        base = f"diffusion_model.{module}"
        comfy.pair(f"{base}.lora_down.weight", f"{base}.lora_up.weight", f"{o2d[module]}.weight", down, up, alpha / RANK)
        comfy.tensors[f"{base}.alpha"] = np.array(alpha, dtype=np.float32)
    for module, suffix, key in [
        ("blocks.0.self_attn.norm_q", "weight", "diff"),
        ("blocks.1.cross_attn.norm_k", "weight", "diff"),
        ("blocks.0.norm3", "weight", "diff"),
        ("blocks.0.norm3", "bias", "diff_b"),
        ("blocks.0.cross_attn.o", "bias", "diff_b"),
        ("time_projection.1", "bias", "diff_b"),
    ]:
        comfy.full(f"diffusion_model.{module}.{key}", f"{o2d[module]}.{suffix}", f32(0.1 * rng.standard_normal(shape(module, suffix))))
    for module in ("blocks.1.modulation", "head.modulation"):
        comfy.full(f"diffusion_model.{module}.diff", o2d[module], f32(0.1 * rng.standard_normal(weights[o2d[module]].shape)))

    # Kohya / musubi: the same naming with underscores, one alpha for all.
    kohya = Lora("kohya")
    for module in ["blocks.0.self_attn.v", "blocks.1.self_attn.o", "blocks.1.cross_attn.k", "blocks.0.ffn.2", "text_embedding.2", "time_embedding.0"]:
        down, up = factors(rng, shape(module))
        base = "lora_unet_" + module.replace(".", "_")
        kohya.pair(f"{base}.lora_down.weight", f"{base}.lora_up.weight", f"{o2d[module]}.weight", down, up, 6.0 / RANK)
        kohya.tensors[f"{base}.alpha"] = np.array(6.0, dtype=np.float32)

    # Full deltas only.
    diff = Lora("diff")
    for module, suffix, key in [
        ("blocks.1.ffn.0", "weight", "diff"),
        ("blocks.1.ffn.0", "bias", "diff_b"),
        ("head.head", "weight", "diff"),
        ("patch_embedding", "weight", "diff"),
        ("blocks.1.self_attn.norm_k", "weight", "diff"),
    ]:
        diff.full(f"diffusion_model.{module}.{key}", f"{o2d[module]}.{suffix}", f32(0.05 * rng.standard_normal(shape(module, suffix))))
    diff.full("diffusion_model.blocks.0.diff_m", "blocks.0.scale_shift_table", f32(0.1 * rng.standard_normal(weights["blocks.0.scale_shift_table"].shape)))
    return comfy, kohya, diff, rng


PEFT_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj", "net.2", "linear_1", "linear_2", "time_proj", "proj_out"]
PEFT_ALPHA = 8.0
PEFT_ALPHA_PATTERN = {"attn2.to_k": 2.0}


def build_peft(config, weights, rng):
    """A LoRA made by peft on the reference model: its state dict (peft's own key names,
    saved under diffusers' transformer. prefix) and the model with the adapter live."""
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from peft.tuners.lora import LoraLayer

    cfg = LoraConfig(
        r=RANK,
        lora_alpha=PEFT_ALPHA,
        alpha_pattern=dict(PEFT_ALPHA_PATTERN),
        target_modules=PEFT_TARGETS,
        lora_dropout=0.0,
        init_lora_weights=False,
    )
    model = load(WanTransformer(config), weights, torch.float64, "cpu")
    model = inject_adapter_in_model(cfg, model).double().eval()
    lora = Lora("peft")
    for name, m in model.named_modules():
        if not isinstance(m, LoraLayer):
            continue
        w = weights[f"{name}.weight"]
        down, up = factors(rng, w.shape)
        m.lora_A["default"].weight.data = torch.from_numpy(down.astype(np.float64))
        m.lora_B["default"].weight.data = torch.from_numpy(up.astype(np.float64))
        lora.changes.append((f"{name}.weight", "lowrank", (down, up), float(m.scaling["default"])))
    if not hasattr(model, "peft_config"):  # as diffusers' add_adapter records it
        model.peft_config = {"default": cfg}
    sd = get_peft_model_state_dict(model)
    lora.tensors = {f"transformer.{k}": f32(v.numpy()) for k, v in sd.items()}
    lora.metadata["lora_adapter_metadata"] = json.dumps(
        {"r": RANK, "lora_alpha": PEFT_ALPHA, "alpha_pattern": PEFT_ALPHA_PATTERN, "target_modules": PEFT_TARGETS}
    )
    expected = {c[0][: -len(".weight")] + ".lora_A.weight" for c in lora.changes}
    got = {k[len("transformer.") :] for k in lora.tensors if k.endswith("lora_A.weight")}
    assert got == expected, f"peft's state dict names {sorted(got - expected)[:3]} / lacks {sorted(expected - got)[:3]}"
    return lora, model


def merged_model(config, weights, deltas: dict[str, np.ndarray]):
    """The reference model in float64 with `deltas` added to its parameters. (Loading a
    float64 state dict would round it to the module's float32 parameters first.)"""
    model = load(WanTransformer(config), weights, torch.float64, "cpu")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, d in deltas.items():
            params[name].add_(torch.from_numpy(np.asarray(d, dtype=np.float64)))
    return model


def forward(model, x):
    with torch.no_grad():
        return channels_last(model(channels_first(x["latents"]), x["timesteps"], x["context"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--golden", default=DEFAULT_GOLDEN, help="folder holding wan_transformer.safetensors")
    ap.add_argument("--out", default=None, help="where to write (default: --golden)")
    ap.add_argument("--seed", type=int, default=20250)
    args = ap.parse_args()
    out_dir = args.out or args.golden
    os.makedirs(out_dir, exist_ok=True)
    torch.use_deterministic_algorithms(True, warn_only=True)

    base_path = os.path.join(args.golden, "wan_transformer.safetensors")
    tensors, meta = read_safetensors(base_path)
    with open(base_path, "rb") as fh:
        base_sha = hashlib.sha256(fh.read()).hexdigest()
    config = json.loads(meta["config"])
    data = ("input.", "output.", "output_bf16.", "inter.")
    weights = {k: v for k, v in tensors.items() if not k.startswith(data)}
    x = {
        "latents": torch.from_numpy(tensors["input.latents"]).double(),
        "timesteps": torch.from_numpy(tensors["input.timesteps"]).double(),
        "context": torch.from_numpy(tensors["input.context"]).double(),
    }

    comfy, kohya, diff, rng = build_loras(weights, config["num_layers"], args.seed)
    peft, peft_model = build_peft(config, weights, rng)
    loras = {lora.name: lora for lora in (peft, comfy, kohya, diff)}

    cases: list[tuple[str, list[tuple[str, float]]]] = []
    for name in loras:
        for s in STRENGTHS:
            cases.append((f"{name}.s{s:g}", [(name, s)]))
    cases.append(("several", [("comfyui", 0.7), ("kohya", -0.4), ("diff", 1.0)]))

    outputs: dict[str, np.ndarray] = {}
    plain = forward(load(WanTransformer(config), weights, torch.float64, "cpu"), x)
    for case, parts in cases:
        deltas: dict[str, np.ndarray] = {}
        for name, s in parts:
            for t, d in loras[name].deltas(weights, s).items():
                deltas[t] = deltas.get(t, 0.0) + d
        y = forward(merged_model(config, weights, deltas), x)
        outputs[f"output.{case}.velocity"] = f32(y.numpy())
        print(f"  {case}: changes the output by {rel_err(y, plain):.2e} (relative L2)")
        if parts[0][0] == "peft":
            # peft's own forward, LoRA unmerged, scaling × strength, against the merge written out here.
            base = {n: m.scaling["default"] for n, m in peft_model.named_modules() if hasattr(m, "scaling")}
            for n, m in peft_model.named_modules():
                if n in base:
                    m.scaling["default"] = base[n] * parts[0][1]
            ref = forward(peft_model, x)
            for n, m in peft_model.named_modules():
                if n in base:
                    m.scaling["default"] = base[n]
            err = rel_err(y, ref)
            print(f"  {case}: merge written out vs peft's forward: {err:.2e}")
            assert err < 1e-10, f"{case}: the merge disagrees with peft ({err:.2e})"

    total = 0
    for lora in loras.values():
        path = os.path.join(out_dir, f"wan_lora_{lora.name}.safetensors")
        total += write_safetensors(path, lora.tensors, lora.metadata)
        print(f"  wrote {path}: {len(lora.tensors)} tensors")
    desc = {
        "cases": [{"name": c, "loras": [{"file": f"wan_lora_{n}.safetensors", "strength": s} for n, s in p]} for c, p in cases],
        "output.<case>.velocity": "the transformer's output on wan_transformer.safetensors' input.* with the case's LoRAs merged "
        "(float64 on the float32 values stored), written as float32",
    }
    path = os.path.join(out_dir, "wan_lora.safetensors")
    total += write_safetensors(
        path,
        outputs,
        {
            "format": FORMAT,
            "model": "wan_lora",
            "base": "wan_transformer.safetensors",
            "base_sha256": base_sha,
            "cases": json.dumps(desc["cases"]),
            "tensors": json.dumps(desc),
            "seed": str(args.seed),
            "torch_version": torch.__version__,
            "peft_version": __import__("peft").__version__,
            "numpy_version": np.__version__,
            "python_version": platform.python_version(),
            "generator": "training/make_golden_lora.py",
        },
    )
    print(f"  wrote {path}: {len(outputs)} outputs; {total / 1024:.0f} KiB in all")


if __name__ == "__main__":
    main()
