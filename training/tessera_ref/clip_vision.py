"""CLIP vision tower (Hugging Face CLIPVisionModel) and its image preprocessing
(CLIPImageProcessor), as Wan2.1's image-to-video models use them.

Module tree chosen so that state_dict() keys are the Hugging Face checkpoint names
(vision_model.*). Written from the published architecture: patch embedding (a
bias-free convolution), a class token and learned positions, a LayerNorm before the
encoder ("pre_layrnorm", HF's spelling), pre-LN encoder layers (attention with biases,
an MLP with "gelu" (erf) or "quick_gelu"), and a final LayerNorm that Wan does not
use: Wan takes the hidden states before the last layer (hidden_states[-2])."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


@dataclass
class ClipVisionConfig:
    hidden_size: int = 1280
    intermediate_size: int = 5120
    num_attention_heads: int = 16
    num_hidden_layers: int = 32
    patch_size: int = 14
    image_size: int = 224
    num_channels: int = 3
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5

    def to_dict(self) -> dict:
        return asdict(self)


def activation(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "gelu":
        return F.gelu(x)  # exact, with erf
    if name == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    raise ValueError(f"hidden_act {name!r} is not supported")


class Embeddings(nn.Module):
    def __init__(self, c: ClipVisionConfig):
        super().__init__()
        d = c.hidden_size
        self.class_embedding = nn.Parameter(torch.zeros(d))
        self.patch_embedding = nn.Conv2d(c.num_channels, d, kernel_size=c.patch_size, stride=c.patch_size, bias=False)
        n = (c.image_size // c.patch_size) ** 2 + 1
        self.position_embedding = nn.Embedding(n, d)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        b = pixels.shape[0]
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2)  # [B, g*g, D], row-major
        cls = self.class_embedding.to(patches.dtype).expand(b, 1, -1)
        x = torch.cat([cls, patches], dim=1)
        return x + self.position_embedding.weight.to(x.dtype)[None]


class SelfAttention(nn.Module):
    def __init__(self, c: ClipVisionConfig):
        super().__init__()
        d = c.hidden_size
        self.heads = c.num_attention_heads
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x):
        b, n, d = x.shape
        q = self.q_proj(x).view(b, n, self.heads, -1)
        k = self.k_proj(x).view(b, n, self.heads, -1)
        v = self.v_proj(x).view(b, n, self.heads, -1)
        logits = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
        p = torch.softmax(logits, dim=-1)
        return self.out_proj(torch.einsum("bhqk,bkhd->bqhd", p, v).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, c: ClipVisionConfig):
        super().__init__()
        self.act = c.hidden_act
        self.fc1 = nn.Linear(c.hidden_size, c.intermediate_size)
        self.fc2 = nn.Linear(c.intermediate_size, c.hidden_size)

    def forward(self, x):
        return self.fc2(activation(self.fc1(x), self.act))


class Layer(nn.Module):
    def __init__(self, c: ClipVisionConfig):
        super().__init__()
        self.self_attn = SelfAttention(c)
        self.layer_norm1 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.mlp = MLP(c)
        self.layer_norm2 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, c: ClipVisionConfig):
        super().__init__()
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])


class VisionTransformer(nn.Module):
    def __init__(self, c: ClipVisionConfig):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.pre_layrnorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.encoder = Encoder(c)
        self.post_layernorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)


class ClipVisionModel(nn.Module):
    def __init__(self, config: ClipVisionConfig | dict):
        super().__init__()
        c = config if isinstance(config, ClipVisionConfig) else ClipVisionConfig(**config)
        self.config = c
        self.vision_model = VisionTransformer(c)

    def hidden_states(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        """pixels [B, 3, S, S] (preprocessed) -> HF's hidden_states: the encoder's input
        (after pre_layrnorm), then the output of every layer."""
        vm = self.vision_model
        x = vm.pre_layrnorm(vm.embeddings(pixels))
        out = [x]
        for layer in vm.encoder.layers:
            x = layer(x)
            out.append(x)
        return out

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """What Wan's pipeline takes: hidden_states[-2], every token (class token first)."""
        return self.hidden_states(pixels)[-2]


# ---- CLIPImageProcessor (the "slow", PIL one diffusers' Wan pipelines load) ----


def image_processor_config(size: int) -> dict:
    """preprocessor_config.json of a CLIPImageProcessor at `size` (224 for ViT-H/14)."""
    return {
        "crop_size": {"height": size, "width": size},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": CLIP_MEAN,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": CLIP_STD,
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"shortest_edge": size},
    }


def preprocess(image, cfg: dict) -> np.ndarray:
    """A PIL image -> float32 [3, S, S], as CLIPImageProcessor does it: shortest side to
    size (the long side truncated), PIL bicubic; centre crop (top-left offsets rounded
    down); ×1/255 (in float64, stored float32); (x − mean) / std in float32."""
    from PIL import Image

    img = image.convert("RGB")
    w, h = img.size
    if cfg.get("do_resize", True):
        short = cfg["size"]["shortest_edge"]
        if w <= h:
            nw, nh = short, int(short * h / w)
        else:
            nw, nh = int(short * w / h), short
        img = img.resize((nw, nh), resample=Image.Resampling(cfg.get("resample", 3)))
    a = np.asarray(img)  # [H, W, 3] uint8
    if cfg.get("do_center_crop", True):
        ch, cw = cfg["crop_size"]["height"], cfg["crop_size"]["width"]
        top = (a.shape[0] - ch) // 2
        left = (a.shape[1] - cw) // 2
        a = a[top : top + ch, left : left + cw]
    x = a.astype(np.float32)
    if cfg.get("do_rescale", True):
        x = (a.astype(np.float64) * cfg.get("rescale_factor", 1 / 255)).astype(np.float32)
    if cfg.get("do_normalize", True):
        x = (x - np.array(cfg["image_mean"], dtype=np.float32)) / np.array(cfg["image_std"], dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)
