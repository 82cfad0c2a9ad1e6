"""What the demo-model trainer, exporter and sampler check share: the word-level
tokenizer (read from the tokenizer.json the engine ships), the clip files written by
make_dataset.mjs, the text-state rule of the Wan pipeline, and checkpoint files."""

from __future__ import annotations

import glob
import json
import math
import os
import re

import numpy as np
import torch
import torch.nn.functional as F

from demo.config import FRAMES, SIZE, TEXT_LENGTH
from tessera_ref import read_safetensors, write_safetensors
from tessera_ref import wan_transformer as _wt

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENIZER_JSON = os.path.join(HERE, "tokenizer.json")


class WordTokenizer:
    """The tokenizer.json's WordLevel model as the engine runs it: lowercase, split on
    \\w+ | punctuation runs (ASCII, as tokenizers.js does), unknown -> <unk>, a
    trailing </s>, padded with <pad> (0) or cut to `length` keeping the </s>."""

    def __init__(self, path: str = TOKENIZER_JSON):
        with open(path) as f:
            j = json.load(f)
        self.vocab: dict[str, int] = j["model"]["vocab"]
        self.pad, self.eos, self.unk = self.vocab["<pad>"], self.vocab["</s>"], self.vocab["<unk>"]
        self.size = max(self.vocab.values()) + 1

    def encode(self, text: str, length: int = TEXT_LENGTH) -> list[int]:
        words = re.findall(r"\w+|[^\w\s]+", text.lower(), flags=re.ASCII)
        ids = [self.vocab.get(w, self.unk) for w in words][: length - 1] + [self.eos]
        return ids + [self.pad] * (length - len(ids))

    def batch(self, texts: list[str], length: int = TEXT_LENGTH) -> torch.Tensor:
        return torch.tensor([self.encode(t, length) for t in texts], dtype=torch.long)


def text_states(t5, ids: torch.Tensor, pad: int = 0) -> torch.Tensor:
    """The Wan pipeline's text states: the encoder over the tokens, rows past the text zero."""
    mask = ids != pad
    return t5(ids, mask) * mask[..., None].to(torch.float32)


def load_clips(folder: str, device: str = "cpu"):
    """Every part of a make_dataset.mjs folder: uint8 [N, 17, 128, 128, 3] on `device`
    (filled part by part, so host memory holds one part at a time), captions, held-out flags."""
    parts = sorted(glob.glob(os.path.join(folder, "part-*.json")), key=lambda p: int(p.split("-")[-1][:-5]))
    if not parts:
        raise FileNotFoundError(f"{folder}: no part-*.json (run make_dataset.mjs first)")
    metas = []
    for p in parts:
        with open(p) as f:
            metas.append(json.load(f))
    n = sum(m["count"] for m in metas)
    videos = torch.empty((n, FRAMES, SIZE, SIZE, 3), dtype=torch.uint8, device=device)
    captions, held, at = [], [], 0
    for p, meta in zip(parts, metas):
        raw = np.fromfile(p[:-5] + ".u8", dtype=np.uint8).reshape(meta["count"], FRAMES, SIZE, SIZE, 3)
        videos[at : at + meta["count"]] = torch.from_numpy(raw)
        at += meta["count"]
        captions += meta["captions"]
        held += meta["heldOut"]
    return videos, captions, held


def to_model_video(u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> float [B, 3, T, H, W] in [-1, 1]."""
    return u8.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


def fast_sdpa():
    """Swap the reference's written-out attention for PyTorch's fused one (same math)
    when training; the float64 reference keeps the einsum version."""

    def sdpa(q, k, v, mask=None, bias=None, scale=None):
        if bias is not None or q.dtype == torch.float64:
            return _reference(q, k, v, mask=mask, bias=bias, scale=scale)
        m = None if mask is None else mask[:, None, None, :]
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=m, scale=scale)
        return o.transpose(1, 2)

    _reference = _wt.sdpa
    if hasattr(F, "scaled_dot_product_attention"):
        _wt.sdpa = sdpa


def save_sharded(state: dict[str, torch.Tensor], prefix: str, dtype=torch.float32, max_bytes: int = 15 << 20) -> list[str]:
    """Writes a state dict (float32 or float16) as prefix-000.safetensors, … each under
    max_bytes (the device tool returns files of at most 16 MiB)."""
    files, cur, size = [], {}, 0
    for name, t in state.items():
        a = t.detach().to("cpu", dtype).contiguous()
        n = a.numel() * a.element_size()
        if cur and size + n > max_bytes:
            files.append(cur)
            cur, size = {}, 0
        cur[name] = a
        size += n
    files.append(cur)
    paths = []
    for i, f in enumerate(files):
        path = f"{prefix}-{i:03d}.safetensors"
        write_safetensors(path, {k: v.numpy() for k, v in f.items()})
        paths.append(path)
    return paths


def load_sharded(prefix: str) -> dict[str, torch.Tensor]:
    paths = sorted(glob.glob(f"{prefix}-*.safetensors"))
    if not paths:
        raise FileNotFoundError(f"no checkpoint files {prefix}-*.safetensors")
    out = {}
    for p in paths:
        tensors, _ = read_safetensors(p)
        out.update({k: torch.from_numpy(np.array(v)).float() for k, v in tensors.items()})
    return out


def cosine_warm(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.float(), b.float()).item()
    return 10 * math.log10(4.0 / max(mse, 1e-12))
