"""Wan2.1 text-to-video diffusion transformer (WanTransformer3DModel in diffusers).

Module tree chosen so that state_dict() keys are the diffusers checkpoint names.
Every op runs in the dtype of its input, so the model in float64 is the exact-math
reference; the few places where the published code rounds (diffusers computes the
timestep sinusoid and the RoPE table in float32) are computed here in the model's
dtype, as the original Wan code does in float64."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class WanTransformerConfig:
    patch_size: list[int] = field(default_factory=lambda: [1, 2, 2])
    num_attention_heads: int = 12
    attention_head_dim: int = 128
    in_channels: int = 16
    out_channels: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    ffn_dim: int = 8960
    num_layers: int = 30
    cross_attn_norm: bool = True
    qk_norm: str | None = "rms_norm_across_heads"
    eps: float = 1e-6
    rope_max_seq_len: int = 1024
    # Image-to-video (Wan2.1 I2V / FLF2V): CLIP hidden width, the added key/value input
    # width (the inner dim), and the learned positions of FLF2V's two images' tokens.
    image_dim: int | None = None
    added_kv_proj_dim: int | None = None
    pos_embed_seq_len: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _upcast(x: torch.Tensor) -> torch.Tensor:
    # Norm statistics in at least float32, as the published code does under autocast.
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class RMSNorm(nn.Module):
    """RMS norm over the last dim with a weight (torch.nn.RMSNorm, which diffusers uses)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = _upcast(x)
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.to(y.dtype)).to(x.dtype)


def layer_norm(x: torch.Tensor, eps: float, weight=None, bias=None) -> torch.Tensor:
    xf = _upcast(x)
    w = None if weight is None else weight.to(xf.dtype)
    b = None if bias is None else bias.to(xf.dtype)
    return F.layer_norm(xf, (xf.shape[-1],), w, b, eps)


def timestep_sinusoid(t: torch.Tensor, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """[cos, sin] of t·10000^(−j/half), j < half (Wan's sinusoidal_embedding_1d; diffusers'
    Timesteps with flip_sin_to_cos=True, downscale_freq_shift=0)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64, device=t.device) / half)
    arg = t.to(torch.float64)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1).to(dtype)


def rope_dims(head_dim: int) -> tuple[int, int, int]:
    """Head channels given to the (t, h, w) axes: [d − 4⌊d/6⌋, 2⌊d/6⌋, 2⌊d/6⌋]."""
    s = 2 * (head_dim // 6)
    return head_dim - 2 * s, s, s


def rope_cos_sin(grid: tuple[int, int, int], head_dim: int, device, theta: float = 10000.0):
    """cos, sin [L, head_dim] (float64) for tokens in f-h-w order. Each axis rotates its own
    channel block; within a block, channel pair (2i, 2i+1) turns by pos·theta^(−2i/axis_dim)."""
    parts_c, parts_s = [], []
    for axis, (n, d) in enumerate(zip(grid, rope_dims(head_dim))):
        inv = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64, device=device) / d)
        ang = torch.arange(n, dtype=torch.float64, device=device)[:, None] * inv[None, :]
        ang = ang.repeat_interleave(2, dim=1)  # [n, d]: both channels of a pair share an angle
        shape = [1, 1, 1, d]
        shape[axis] = n
        parts_c.append(torch.cos(ang).view(shape).expand(*grid, d))
        parts_s.append(torch.sin(ang).view(shape).expand(*grid, d))
    cos = torch.cat(parts_c, dim=-1).reshape(-1, head_dim)
    sin = torch.cat(parts_s, dim=-1).reshape(-1, head_dim)
    return cos, sin


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, L, H, D]; pairs (x[2i], x[2i+1]) as complex numbers times e^{iθ}."""
    c = cos[None, :, None, :].to(x.dtype)
    s = sin[None, :, None, :].to(x.dtype)
    x1 = x[..., 0::2]
    x2 = x[..., 1::2]
    rot = torch.stack([-x2, x1], dim=-1).flatten(-2)  # (−x2, x1) interleaved
    return x * c + rot * s


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask=None, bias=None, scale=None) -> torch.Tensor:
    """softmax(scale·q kᵀ + bias, masked) v; q [B, Lq, H, D], k/v [B, Lk, H, D] -> [B, Lq, H, D].
    Written out (not F.scaled_dot_product_attention) so float64 stays float64 everywhere."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    logits = torch.einsum("bqhd,bkhd->bhqk", q, k) * scale
    if bias is not None:
        logits = logits + bias.to(logits.dtype)
    if mask is not None:  # [B, Lk] bool, True = attend
        logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
    p = torch.softmax(_upcast(logits), dim=-1).to(v.dtype)
    return torch.einsum("bhqk,bkhd->bqhd", p, v)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, eps: float, qk_norm: bool, added_kv_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])
        # Across heads: one RMS over all dim channels of q (and of k), before the head split.
        self.norm_q = RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self.norm_k = RMSNorm(dim, eps) if qk_norm else nn.Identity()
        if added_kv_dim is not None:
            # Image-to-video: keys and values of the image tokens, attended separately.
            self.add_k_proj = nn.Linear(added_kv_dim, dim)
            self.add_v_proj = nn.Linear(added_kv_dim, dim)
            self.norm_added_k = RMSNorm(dim, eps)

    def forward(self, x, context=None, rope=None, image=None):
        ctx = x if context is None else context
        b, lq, d = x.shape
        lk = ctx.shape[1]
        q = self.norm_q(self.to_q(x)).view(b, lq, self.heads, -1)
        k = self.norm_k(self.to_k(ctx)).view(b, lk, self.heads, -1)
        v = self.to_v(ctx).view(b, lk, self.heads, -1)
        if rope is not None:
            q = apply_rope(q, *rope)
            k = apply_rope(k, *rope)
        o = sdpa(q, k, v).reshape(b, lq, d)
        if image is not None:
            # The same queries over the image tokens; the two attention outputs are summed.
            li = image.shape[1]
            ki = self.norm_added_k(self.add_k_proj(image)).view(b, li, self.heads, -1)
            vi = self.add_v_proj(image).view(b, li, self.heads, -1)
            o = o + sdpa(q, ki, vi).reshape(b, lq, d)
        return self.to_out[0](o)


class GeluTanhProj(nn.Module):
    def __init__(self, i: int, o: int):
        super().__init__()
        self.proj = nn.Linear(i, o)

    def forward(self, x):
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    def __init__(self, dim: int, ffn_dim: int):
        super().__init__()
        self.net = nn.ModuleList([GeluTanhProj(dim, ffn_dim), nn.Identity(), nn.Linear(ffn_dim, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class Block(nn.Module):
    def __init__(self, c: WanTransformerConfig):
        super().__init__()
        dim = c.num_attention_heads * c.attention_head_dim
        self.eps = c.eps
        qk = c.qk_norm is not None
        self.attn1 = Attention(dim, c.num_attention_heads, c.eps, qk)
        self.attn2 = Attention(dim, c.num_attention_heads, c.eps, qk, c.added_kv_proj_dim)
        # diffusers' norm2 is the cross-attention pre-norm (the original code's norm3).
        self.norm2 = nn.LayerNorm(dim, eps=c.eps, elementwise_affine=True) if c.cross_attn_norm else None
        self.ffn = FeedForward(dim, c.ffn_dim)
        self.scale_shift_table = nn.Parameter(torch.zeros(1, 6, dim))

    def forward(self, x, ctx, tproj, rope, img=None):
        # tproj [B, 6, dim] (per sample) or [B, L, 6, dim] (per token, Wan2.2 TI2V):
        # shift, scale, gate (self-attention), shift, scale, gate (FFN), each broadcast
        # over the tokens as [B, 1, dim] or taken per token as [B, L, dim].
        table = self.scale_shift_table.to(tproj.dtype)
        if tproj.ndim == 4:
            e = (table[:, None] + tproj).unbind(2)
        else:
            e = [v[:, None] for v in (table + tproj).unbind(1)]
        h = layer_norm(x, self.eps) * (1 + e[1]) + e[0]
        x = x + self.attn1(h.to(x.dtype), rope=rope) * e[2]
        h = x if self.norm2 is None else layer_norm(x, self.eps, self.norm2.weight, self.norm2.bias).to(x.dtype)
        x = x + self.attn2(h, context=ctx, image=img)
        h = layer_norm(x, self.eps) * (1 + e[4]) + e[3]
        x = x + self.ffn(h.to(x.dtype)) * e[5]
        return x


class _MLP(nn.Module):
    def __init__(self, i: int, o: int, act: str):
        super().__init__()
        self.linear_1 = nn.Linear(i, o)
        self.linear_2 = nn.Linear(o, o)
        self.act = act

    def forward(self, x):
        h = self.linear_1(x)
        h = F.silu(h) if self.act == "silu" else F.gelu(h, approximate="tanh")
        return self.linear_2(h)


class _ImageFF(nn.Module):
    """diffusers' FeedForward(image_dim, dim, mult=1, activation_fn="gelu"): Linear, exact GELU, Linear."""

    def __init__(self, i: int, o: int):
        super().__init__()

        class _Proj(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(i, i)

            def forward(self, x):
                return F.gelu(self.proj(x))

        self.net = nn.ModuleList([_Proj(), nn.Identity(), nn.Linear(i, o)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class ImageEmbedder(nn.Module):
    """CLIP image states -> image tokens: LayerNorm, MLP (exact GELU), LayerNorm (eps 1e-5,
    with affine, as Wan's MLPProj); FLF2V first adds learned positions to both images' tokens."""

    def __init__(self, image_dim: int, dim: int, pos_embed_seq_len: int | None):
        super().__init__()
        self.norm1 = nn.LayerNorm(image_dim, eps=1e-5)
        self.ff = _ImageFF(image_dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_embed_seq_len, image_dim)) if pos_embed_seq_len else None

    def forward(self, x):
        """x [B, Li, image_dim]: for FLF2V Li = pos_embed_seq_len (first image's tokens, then the last's)."""
        if self.pos_embed is not None:
            x = x + self.pos_embed.to(x.dtype)
        h = layer_norm(x, 1e-5, self.norm1.weight, self.norm1.bias).to(x.dtype)
        h = self.ff(h)
        return layer_norm(h, 1e-5, self.norm2.weight, self.norm2.bias).to(x.dtype)


class ConditionEmbedder(nn.Module):
    def __init__(self, c: WanTransformerConfig, dim: int):
        super().__init__()
        self.time_embedder = _MLP(c.freq_dim, dim, "silu")
        self.time_proj = nn.Linear(dim, 6 * dim)
        self.text_embedder = _MLP(c.text_dim, dim, "gelu_tanh")
        if c.image_dim is not None:
            self.image_embedder = ImageEmbedder(c.image_dim, dim, c.pos_embed_seq_len)


class WanTransformer(nn.Module):
    def __init__(self, config: WanTransformerConfig | dict):
        super().__init__()
        c = config if isinstance(config, WanTransformerConfig) else WanTransformerConfig(**config)
        self.config = c
        dim = c.num_attention_heads * c.attention_head_dim
        self.dim = dim
        self.patch_embedding = nn.Conv3d(c.in_channels, dim, kernel_size=c.patch_size, stride=c.patch_size)
        self.condition_embedder = ConditionEmbedder(c, dim)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.num_layers)])
        self.proj_out = nn.Linear(dim, c.out_channels * math.prod(c.patch_size))
        self.scale_shift_table = nn.Parameter(torch.zeros(1, 2, dim))

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor | None = None,
    ):
        """hidden_states [B, C, F, H, W], timestep [B] (0..1000) or [B, L] (one per token,
        Wan2.2 TI2V's expand_timesteps), encoder_hidden_states [B, Lt, text_dim]
        -> predicted flow velocity [B, out_channels, F, H, W]."""
        c = self.config
        b, _, f, h, w = hidden_states.shape
        pt, ph, pw = c.patch_size
        grid = (f // pt, h // ph, w // pw)
        dtype = self.patch_embedding.weight.dtype

        x = self.patch_embedding(hidden_states)  # [B, dim, F', H', W']
        x = x.flatten(2).transpose(1, 2)  # tokens in f-h-w order
        cos, sin = rope_cos_sin(grid, c.attention_head_dim, x.device)

        ce = self.condition_embedder
        per_token = timestep.ndim == 2
        temb = ce.time_embedder(timestep_sinusoid(timestep.flatten(), c.freq_dim, dtype))
        tproj = ce.time_proj(F.silu(temb)).unflatten(1, (6, self.dim))
        if per_token:  # [B·L, ...] -> [B, L, ...]
            temb = temb.unflatten(0, timestep.shape)
            tproj = tproj.unflatten(0, timestep.shape)
        ctx = ce.text_embedder(encoder_hidden_states)
        img = None
        if encoder_hidden_states_image is not None:
            # [B, Li, image_dim] (FLF2V: both images' tokens, Li = pos_embed_seq_len).
            img = ce.image_embedder(encoder_hidden_states_image)

        for blk in self.blocks:
            x = blk(x, ctx, tproj, (cos, sin), img)

        # Head: shift/scale from the pre-SiLU time embedding (no projection).
        table = self.scale_shift_table.to(temb.dtype)
        if per_token:
            shift, scale = (table[:, None] + temb[:, :, None]).unbind(2)
        else:
            shift, scale = [v[:, None] for v in (table + temb[:, None]).unbind(1)]
        x = layer_norm(x, c.eps) * (1 + scale) + shift
        x = self.proj_out(x)

        # [B, L, pt·ph·pw·C] with channels fastest -> [B, C, F, H, W].
        x = x.reshape(b, *grid, pt, ph, pw, c.out_channels)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)
        return x.reshape(b, c.out_channels, f, h, w)
