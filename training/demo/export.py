"""Writes the demo model folder (the diffusers layout the engine loads) from a
trainer checkpoint directory (the EMA weights demo.train leaves in --out).

    cd training && python3 -m demo.export --ckpt DIR --out ../packages/core/models/tessera-world [--commit SHA]

Weights are stored as float16 (the engine casts them to its run dtype on load; the
folder must stay under 25 MB); a weight outside float16's range is an error."""

from __future__ import annotations

import argparse
import json
import os
import shutil

import numpy as np

from demo.common import TOKENIZER_JSON, WordTokenizer, load_sharded
from demo.config import DIT, FPS, FRAMES, GUIDANCE, SHIFT, SIZE, STEPS, TEXT_LENGTH, VAE, t5_config
from tessera_ref import write_safetensors

DIFFUSERS_VERSION = "0.33.1"


def f16(state, what: str) -> dict[str, np.ndarray]:
    out = {}
    for k, v in state.items():
        a = v.float().numpy()
        big = float(np.abs(a).max()) if a.size else 0.0
        if big > 60000:
            raise ValueError(f"{what}: {k} has |w| = {big}, outside float16's range")
        out[k] = a.astype(np.float16)
    return out


def write_json(path: str, v) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(json.dumps(v, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--commit", default="unknown")
    a = ap.parse_args()
    with open(os.path.join(a.ckpt, "train.json")) as f:
        train = json.load(f)
    tok = WordTokenizer()
    out = a.out
    for sub in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
        os.makedirs(os.path.join(out, sub))

    write_json(os.path.join(out, "model_index.json"), {
        "_class_name": "WanPipeline", "_diffusers_version": DIFFUSERS_VERSION,
        "scheduler": ["diffusers", "UniPCMultistepScheduler"],
        "text_encoder": ["transformers", "UMT5EncoderModel"],
        "tokenizer": ["transformers", "T5TokenizerFast"],
        "transformer": ["diffusers", "WanTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLWan"],
    })
    dit = DIT.to_dict()
    write_json(os.path.join(out, "transformer", "config.json"), {
        "_class_name": "WanTransformer3DModel", "_diffusers_version": DIFFUSERS_VERSION,
        "added_kv_proj_dim": None, "image_dim": None, **dit,
    })
    vae = VAE.to_dict()
    vae.update(latents_mean=[round(x, 6) for x in train["latents_mean"]],
               latents_std=[round(x, 6) for x in train["latents_std"]])
    write_json(os.path.join(out, "vae", "config.json"), {
        "_class_name": "AutoencoderKLWan", "_diffusers_version": DIFFUSERS_VERSION, **vae,
    })
    t5 = t5_config(tok.size).to_dict()
    write_json(os.path.join(out, "text_encoder", "config.json"), {
        "architectures": ["UMT5EncoderModel"], "model_type": "umt5", "is_encoder_decoder": True,
        "torch_dtype": "float16", "is_gated_act": True, **t5,
    })
    shutil.copyfile(TOKENIZER_JSON, os.path.join(out, "tokenizer", "tokenizer.json"))
    write_json(os.path.join(out, "tokenizer", "tokenizer_config.json"), {
        "tokenizer_class": "T5TokenizerFast", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>",
        "model_max_length": TEXT_LENGTH,
    })
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), {
        "_class_name": "UniPCMultistepScheduler", "_diffusers_version": DIFFUSERS_VERSION,
        "flow_shift": SHIFT, "num_train_timesteps": 1000, "prediction_type": "flow_prediction",
        "predict_x0": True, "solver_order": 2, "solver_type": "bh2", "lower_order_final": True,
        "use_flow_sigmas": True, "final_sigmas_type": "zero", "timestep_spacing": "linspace",
    })
    meta = {"format": "pt", "trained_by": "training/demo/train.py", "commit": a.commit}
    sizes = {}
    for sub, name, prefix in (("transformer", "diffusion_pytorch_model", "dit"),
                              ("vae", "diffusion_pytorch_model", "vae"),
                              ("text_encoder", "model", "t5")):
        sizes[sub] = write_safetensors(os.path.join(out, sub, f"{name}.safetensors"),
                                       f16(load_sharded(os.path.join(a.ckpt, prefix)), sub), meta)
    write_json(os.path.join(out, "tessera.json"), {
        "description": "Tessera world demo: a small Wan-family model trained on the procedural world "
                       "(coloured shapes moving on plain or two-tone backgrounds, 17 frames at 128x128)",
        "captionStyle": "tessera-world",
        "textLength": TEXT_LENGTH,
        "defaults": {"width": SIZE, "height": SIZE, "frames": FRAMES, "steps": STEPS, "guidance": GUIDANCE,
                     "shift": SHIFT, "fps": FPS, "scheduler": "unipc"},
        "training": {"vaeSteps": train["vae_steps"], "ditSteps": train["dit_steps"], "clips": train["clips"],
                     "device": train["device"], "torch": train["torch"], "commit": a.commit},
    })
    total = sum(sizes.values())
    print(json.dumps({"out": out, "bytes": sizes, "total_mb": round(total / 1e6, 2)}))


if __name__ == "__main__":
    main()
