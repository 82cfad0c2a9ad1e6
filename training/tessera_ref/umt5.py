"""umT5 encoder (Hugging Face UMT5EncoderModel; Wan's T5Encoder with shared_pos=False).

Differences from T5 that matter: every layer has its own relative-position bias table,
and attention logits are not scaled by 1/√d_kv (the scale lives in the weights).
State-dict keys are Hugging Face's."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class UMT5Config:
    vocab_size: int = 256384
    d_model: int = 4096
    d_kv: int = 64
    d_ff: int = 10240
    num_layers: int = 24
    num_heads: int = 64
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    feed_forward_proj: str = "gated-gelu"
    dense_act_fn: str = "gelu_new"
    layer_norm_epsilon: float = 1e-6
    pad_token_id: int = 0
    eos_token_id: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


def relative_position_bucket(rel: torch.Tensor, num_buckets: int, max_distance: int, bidirectional: bool = True):
    """Bucket of rel = key position − query position. The logarithmic branch is computed in
    float32 whatever the model's dtype, as Hugging Face does (and so the published
    checkpoints were trained): at distances where the exact value is an integer the
    float32 rounding picks the bucket."""
    rel = rel.long()
    bucket = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        bucket += (rel > 0).long() * num_buckets
        n = rel.abs()
    else:
        n = -torch.clamp(rel, max=0)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    # clamp keeps log() finite where the exact branch is taken anyway
    ratio = torch.log(n.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (ratio * (num_buckets - max_exact)).long()
    large = torch.clamp(large, max=num_buckets - 1)
    return bucket + torch.where(is_small, n, large)


def _upcast(x):
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class T5LayerNorm(nn.Module):
    """RMS norm without mean subtraction or bias."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = _upcast(x)
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight.to(y.dtype) * y


class SelfAttention(nn.Module):
    def __init__(self, c: UMT5Config):
        super().__init__()
        inner = c.num_heads * c.d_kv
        self.c = c
        self.q = nn.Linear(c.d_model, inner, bias=False)
        self.k = nn.Linear(c.d_model, inner, bias=False)
        self.v = nn.Linear(c.d_model, inner, bias=False)
        self.o = nn.Linear(inner, c.d_model, bias=False)
        self.relative_attention_bias = nn.Embedding(c.relative_attention_num_buckets, c.num_heads)

    def forward(self, x, mask):
        c = self.c
        b, n, _ = x.shape
        q = self.q(x).view(b, n, c.num_heads, c.d_kv)
        k = self.k(x).view(b, n, c.num_heads, c.d_kv)
        v = self.v(x).view(b, n, c.num_heads, c.d_kv)
        pos = torch.arange(n, device=x.device)
        buckets = relative_position_bucket(
            pos[None, :] - pos[:, None], c.relative_attention_num_buckets, c.relative_attention_max_distance
        )
        bias = self.relative_attention_bias(buckets).permute(2, 0, 1)  # [H, Lq, Lk]
        logits = torch.einsum("bqhd,bkhd->bhqk", q, k) + bias[None].to(q.dtype)
        logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
        p = torch.softmax(_upcast(logits), dim=-1).to(v.dtype)
        o = torch.einsum("bhqk,bkhd->bqhd", p, v).reshape(b, n, -1)
        return self.o(o)


class GatedGelu(nn.Module):
    def __init__(self, c: UMT5Config):
        super().__init__()
        self.wi_0 = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.wi_1 = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.wo = nn.Linear(c.d_ff, c.d_model, bias=False)

    def forward(self, x):
        return self.wo(F.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x))


class _AttnLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.SelfAttention = SelfAttention(c)
        self.layer_norm = T5LayerNorm(c.d_model, c.layer_norm_epsilon)


class _FFLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.DenseReluDense = GatedGelu(c)
        self.layer_norm = T5LayerNorm(c.d_model, c.layer_norm_epsilon)


class _Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([_AttnLayer(c), _FFLayer(c)])

    def forward(self, x, mask):
        a, f = self.layer
        x = x + a.SelfAttention(a.layer_norm(x).to(x.dtype), mask)
        return x + f.DenseReluDense(f.layer_norm(x).to(x.dtype))


class _Stack(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block = nn.ModuleList([_Block(c) for _ in range(c.num_layers)])
        self.final_layer_norm = T5LayerNorm(c.d_model, c.layer_norm_epsilon)


class UMT5Encoder(nn.Module):
    def __init__(self, config: UMT5Config | dict):
        super().__init__()
        c = config if isinstance(config, UMT5Config) else UMT5Config(**config)
        if c.feed_forward_proj != "gated-gelu":
            raise NotImplementedError(c.feed_forward_proj)
        self.config = c
        self.shared = nn.Embedding(c.vocab_size, c.d_model)
        self.encoder = _Stack(c)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """ids [B, L] (int), attention_mask [B, L] (1 = token, 0 = padding) -> last hidden state [B, L, d_model].
        Padded positions are computed like any other query (as Hugging Face does); Wan zeroes them."""
        mask = attention_mask.bool()
        x = self.shared(input_ids)
        for blk in self.encoder.block:
            x = blk(x, mask)
        return self.encoder.final_layer_norm(x)
