"""Wan causal 3D VAE (AutoencoderKLWan in diffusers, WanVAE / Wan2_2_VAE in the original code).

Two forms: Wan2.1's (flat residual blocks and resamplers, upsamplers halving the
channels) and Wan2.2's (is_residual, patch_size 2): pixels folded 2x2 into channels
first, each stage a block whose input is added to its output through a
parameter-free shortcut (AvgDown3D on the way down, DupUp3D on the way up).

Video is encoded in chunks of 1, 4, 4, ... frames and decoded one latent frame at a
time; every causal convolution keeps the last two frames of its input between chunks
(the "feature cache"), so chunked processing equals one causal pass except where the
published model deliberately differs: the temporal downsampler skips its convolution
on the first chunk, and the temporal upsampler leaves the first latent frame
un-doubled and starts the second from zeros ("Rep"). Those quirks are reproduced here
because the published weights were trained with them.

State-dict keys are the diffusers names; RMS-norm gammas keep the checkpoint's
[C, 1, 1, 1] (and [C, 1, 1] in attention) shapes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

CACHE_T = 2

WAN21_LATENTS_MEAN = [
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
]  # fmt: skip
WAN21_LATENTS_STD = [
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
]  # fmt: skip


@dataclass
class WanVAEConfig:
    base_dim: int = 96
    z_dim: int = 16
    dim_mult: list[int] = field(default_factory=lambda: [1, 2, 4, 4])
    num_res_blocks: int = 2
    attn_scales: list[float] = field(default_factory=list)
    temperal_downsample: list[bool] = field(default_factory=lambda: [False, True, True])
    dropout: float = 0.0
    latents_mean: list[float] = field(default_factory=lambda: list(WAN21_LATENTS_MEAN))
    latents_std: list[float] = field(default_factory=lambda: list(WAN21_LATENTS_STD))
    in_channels: int = 3
    out_channels: int = 3
    decoder_base_dim: int | None = None
    is_residual: bool = False
    patch_size: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class FeatCache:
    """Per-module state carried between chunks: the last input frames of each causal
    convolution, the resamplers' markers. One per encode/decode call."""

    def __init__(self):
        self._d: dict[int, object] = {}

    def get(self, m: nn.Module):
        return self._d.get(id(m))

    def set(self, m: nn.Module, v) -> None:
        self._d[id(m)] = v


def _upcast(x):
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class CausalConv3d(nn.Conv3d):
    """Conv3d padded 2·p_t frames in front (none behind) and p_h, p_w symmetric in space."""

    def __init__(self, cin, cout, kernel_size, stride=1, padding=0):
        super().__init__(cin, cout, kernel_size, stride=stride, padding=0)
        p = (padding,) * 3 if isinstance(padding, int) else tuple(padding)
        self.pad_t = 2 * p[0]
        self.pad_hw = (p[2], p[2], p[1], p[1])

    def forward(self, x, prev: torch.Tensor | None = None):
        pad_t = self.pad_t
        if prev is not None and pad_t > 0:
            x = torch.cat([prev.to(x.dtype), x], dim=2)
            pad_t -= prev.shape[2]
        return super().forward(F.pad(x, (*self.pad_hw, pad_t, 0)))

    def cached(self, x, cache: FeatCache | None):
        """This conv over the next chunk: earlier chunks' last frames stand in for the padding."""
        if cache is None:
            return self(x)
        prev = cache.get(self)
        keep = x[:, :, -CACHE_T:]
        if keep.shape[2] < CACHE_T and prev is not None:
            keep = torch.cat([prev[:, :, -1:], keep], dim=2)
        y = self(x, prev)
        cache.set(self, keep)
        return y


class RMSNormC(nn.Module):
    """x / ‖x‖ over channels (dim 1) · √C · γ: F.normalize's eps 1e-12 on the norm."""

    def __init__(self, dim: int, images: bool = False):
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones((dim, 1, 1) if images else (dim, 1, 1, 1)))

    def forward(self, x):
        xf = _upcast(x)
        return (F.normalize(xf, dim=1) * self.scale * self.gamma.to(xf.dtype)).to(x.dtype)


def _per_frame(x, fn):
    """Applies a 2D module to every frame of [B, C, T, H, W]."""
    b, c, t, h, w = x.shape
    y = fn(x.transpose(1, 2).reshape(b * t, c, h, w))
    return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1 = RMSNormC(cin)
        self.conv1 = CausalConv3d(cin, cout, 3, padding=1)
        self.norm2 = RMSNormC(cout)
        self.conv2 = CausalConv3d(cout, cout, 3, padding=1)
        self.conv_shortcut = CausalConv3d(cin, cout, 1) if cin != cout else None

    def forward(self, x, cache=None):
        h = x if self.conv_shortcut is None else self.conv_shortcut(x)
        x = self.conv1.cached(F.silu(self.norm1(x)), cache)
        x = self.conv2.cached(F.silu(self.norm2(x)), cache)
        return x + h


class AttentionBlock(nn.Module):
    """Single-head self-attention among the pixels of each frame separately."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = RMSNormC(dim, images=True)
        self.to_qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def _frame(self, x):
        n, c, h, w = x.shape
        qkv = self.to_qkv(self.norm(x)).reshape(n, 3 * c, h * w).transpose(1, 2)  # [N, HW, 3C]
        q, k, v = qkv.split(c, dim=-1)
        logits = torch.einsum("nic,njc->nij", q, k) * c**-0.5
        p = torch.softmax(_upcast(logits), dim=-1).to(v.dtype)
        o = torch.einsum("nij,njc->nic", p, v).transpose(1, 2).reshape(n, c, h, w)
        return self.proj(o)

    def forward(self, x):
        return x + _per_frame(x, self._frame)


class Resample(nn.Module):
    def __init__(self, dim: int, mode: str, up_out: int | None = None):
        super().__init__()
        self.mode = mode
        if mode in ("upsample2d", "upsample3d"):
            # Index 0 (the nearest-neighbour upsampling) has no weights; keeps the ".1." names.
            # Wan2.1's upsamplers halve the channels, Wan2.2's keep them (up_out = dim).
            self.resample = nn.Sequential(nn.Identity(), nn.Conv2d(dim, up_out or dim // 2, 3, padding=1))
            if mode == "upsample3d":
                self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode in ("downsample2d", "downsample3d"):
            self.resample = nn.Sequential(nn.Identity(), nn.Conv2d(dim, dim, 3, stride=2))
            if mode == "downsample3d":
                self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))
        else:
            raise ValueError(mode)

    def _spatial(self, x):
        conv = self.resample[1]
        if self.mode.startswith("up"):
            x = F.interpolate(_upcast(x), scale_factor=2.0, mode="nearest-exact").to(x.dtype)
            return conv(x)
        return conv(F.pad(x, (0, 1, 0, 1)))  # zero row/column after the last, then stride 2

    def forward(self, x, cache=None):
        b, c, t, h, w = x.shape
        if self.mode == "upsample3d" and cache is not None:
            state = cache.get(self)
            if state is None:
                cache.set(self, "Rep")  # first latent frame: one output frame, no time conv
            else:
                keep = x[:, :, -CACHE_T:]
                if keep.shape[2] < CACHE_T:
                    first = torch.zeros_like(keep) if isinstance(state, str) else state[:, :, -1:]
                    keep = torch.cat([first, keep], dim=2)
                x = self.time_conv(x, None if isinstance(state, str) else state)
                cache.set(self, keep)
                # Channel halves [0:c] and [c:2c] become consecutive frames 2i and 2i+1.
                x = x.reshape(b, 2, c, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c, 2 * t, h, w)
        x = _per_frame(x, self._spatial)
        if self.mode == "downsample3d" and cache is not None:
            state = cache.get(self)
            if state is None:
                cache.set(self, x)  # first chunk passes un-convolved in time
            else:
                keep = x[:, :, -1:]
                x = self.time_conv(torch.cat([state[:, :, -1:], x], dim=2))
                cache.set(self, keep)
        return x


class MidBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.resnets = nn.ModuleList([ResidualBlock(dim, dim), ResidualBlock(dim, dim)])
        self.attentions = nn.ModuleList([AttentionBlock(dim)])

    def forward(self, x, cache=None):
        x = self.resnets[0](x, cache)
        x = self.attentions[0](x)
        return self.resnets[1](x, cache)


class AvgDown3D(nn.Module):
    """Wan2.2's down-block shortcut: time zero-padded in front to a multiple of ft, then
    each (ft, fs, fs) block's values, ordered (channel, dt, dh, dw), averaged in
    consecutive groups of cin·ft·fs²/cout into cout channels."""

    def __init__(self, cin: int, cout: int, ft: int, fs: int):
        super().__init__()
        self.cout, self.ft, self.fs = cout, ft, fs

    def forward(self, x):
        ft, fs = self.ft, self.fs
        x = F.pad(x, (0, 0, 0, 0, (-x.shape[2]) % ft, 0))
        b, c, t, h, w = x.shape
        x = x.reshape(b, c, t // ft, ft, h // fs, fs, w // fs, fs).permute(0, 1, 3, 5, 7, 2, 4, 6)
        x = x.reshape(b, self.cout, (c * ft * fs * fs) // self.cout, t // ft, h // fs, w // fs)
        return x.mean(dim=2)


class DupUp3D(nn.Module):
    """Wan2.2's up-block shortcut: each input channel repeated cout·ft·fs²/cin times,
    the copies spread over an (ft, fs, fs) block in (channel, dt, dh, dw) order; the
    clip's first chunk drops the ft − 1 frames before its first."""

    def __init__(self, cin: int, cout: int, ft: int, fs: int):
        super().__init__()
        self.cin, self.cout, self.ft, self.fs = cin, cout, ft, fs

    def forward(self, x, first: bool):
        ft, fs = self.ft, self.fs
        b, c, t, h, w = x.shape
        x = x.repeat_interleave(self.cout * ft * fs * fs // c, dim=1)
        x = x.reshape(b, self.cout, ft, fs, fs, t, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
        x = x.reshape(b, self.cout, t * ft, h * fs, w * fs)
        return x[:, :, ft - 1 :] if first else x


class ResidualDownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, n: int, temporal: bool, down: bool):
        super().__init__()
        self.avg_shortcut = AvgDown3D(cin, cout, 2 if temporal else 1, 2 if down else 1)
        self.resnets = nn.ModuleList([ResidualBlock(cin if j == 0 else cout, cout) for j in range(n)])
        self.downsampler = Resample(cout, "downsample3d" if temporal else "downsample2d") if down else None

    def forward(self, x, cache=None):
        skip = x
        for r in self.resnets:
            x = r(x, cache)
        if self.downsampler is not None:
            x = self.downsampler(x, cache)
        return x + self.avg_shortcut(skip)


class ResidualUpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, n: int, temporal: bool, up: bool):
        super().__init__()
        self.resnets = nn.ModuleList([ResidualBlock(cin if j == 0 else cout, cout) for j in range(n)])
        self.upsampler = Resample(cout, "upsample3d" if temporal else "upsample2d", up_out=cout) if up else None
        self.shortcut = DupUp3D(cin, cout, 2 if temporal else 1, 2) if up else None

    def forward(self, x, cache=None, first=False):
        skip = x
        for r in self.resnets:
            x = r(x, cache)
        if self.upsampler is not None:
            x = self.upsampler(x, cache)
        if self.shortcut is not None:
            x = x + self.shortcut(skip, first)
        return x


def patchify(x, p: int):
    """[B, C, T, H, W] -> [B, C·p², T, H/p, W/p]: channel c·p² + dw·p + dh holds pixel (p·h + dh, p·w + dw)."""
    if not p or p == 1:
        return x
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t, h // p, p, w // p, p).permute(0, 1, 6, 4, 2, 3, 5)
    return x.reshape(b, c * p * p, t, h // p, w // p)


def unpatchify(x, p: int):
    if not p or p == 1:
        return x
    b, cp, t, h, w = x.shape
    x = x.reshape(b, cp // (p * p), p, p, t, h, w).permute(0, 1, 4, 5, 3, 6, 2)
    return x.reshape(b, cp // (p * p), t, h * p, w * p)


class Encoder(nn.Module):
    def __init__(self, c: WanVAEConfig):
        super().__init__()
        dims = [c.base_dim * u for u in [1, *c.dim_mult]]
        self.conv_in = CausalConv3d(c.in_channels, dims[0], 3, padding=1)
        if c.is_residual:
            last = len(c.dim_mult) - 1
            self.down_blocks = nn.ModuleList(
                ResidualDownBlock(dims[i], dims[i + 1], c.num_res_blocks, i != last and c.temperal_downsample[i], i != last)
                for i in range(len(c.dim_mult))
            )
            self.mid_block = MidBlock(dims[-1])
            self.norm_out = RMSNormC(dims[-1])
            self.conv_out = CausalConv3d(dims[-1], 2 * c.z_dim, 3, padding=1)
            return
        blocks: list[nn.Module] = []
        scale = 1.0
        for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(c.num_res_blocks):
                blocks.append(ResidualBlock(cin, cout))
                if scale in c.attn_scales:
                    blocks.append(AttentionBlock(cout))
                cin = cout
            if i != len(c.dim_mult) - 1:
                blocks.append(Resample(cout, "downsample3d" if c.temperal_downsample[i] else "downsample2d"))
                scale /= 2.0
        self.down_blocks = nn.ModuleList(blocks)
        self.mid_block = MidBlock(dims[-1])
        self.norm_out = RMSNormC(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], 2 * c.z_dim, 3, padding=1)

    def forward(self, x, cache=None):
        x = self.conv_in.cached(x, cache)
        for blk in self.down_blocks:
            x = blk(x) if isinstance(blk, AttentionBlock) else blk(x, cache)
        x = self.mid_block(x, cache)
        return self.conv_out.cached(F.silu(self.norm_out(x)), cache)


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, n: int, mode: str | None):
        super().__init__()
        self.resnets = nn.ModuleList([ResidualBlock(cin if j == 0 else cout, cout) for j in range(n)])
        self.upsamplers = nn.ModuleList([Resample(cout, mode)]) if mode else None

    def forward(self, x, cache=None):
        for r in self.resnets:
            x = r(x, cache)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, cache)
        return x


class Decoder(nn.Module):
    def __init__(self, c: WanVAEConfig):
        super().__init__()
        base = c.decoder_base_dim or c.base_dim
        dims = [base * u for u in [c.dim_mult[-1], *c.dim_mult[::-1]]]
        temperal_upsample = c.temperal_downsample[::-1]
        self.conv_in = CausalConv3d(c.z_dim, dims[0], 3, padding=1)
        self.mid_block = MidBlock(dims[0])
        ups = []
        last = len(c.dim_mult) - 1
        for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
            if c.is_residual:
                ups.append(ResidualUpBlock(cin, cout, c.num_res_blocks + 1, i != last and temperal_upsample[i], i != last))
                continue
            # Every upsampler halves the channels, so blocks after the first start from half.
            if i > 0:
                cin //= 2
            mode = None
            if i != len(c.dim_mult) - 1:
                mode = "upsample3d" if temperal_upsample[i] else "upsample2d"
            ups.append(UpBlock(cin, cout, c.num_res_blocks + 1, mode))
        self.up_blocks = nn.ModuleList(ups)
        self.norm_out = RMSNormC(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], c.out_channels, 3, padding=1)

    def forward(self, x, cache=None, first=False):
        x = self.conv_in.cached(x, cache)
        x = self.mid_block(x, cache)
        for up in self.up_blocks:
            x = up(x, cache, first) if isinstance(up, ResidualUpBlock) else up(x, cache)
        return self.conv_out.cached(F.silu(self.norm_out(x)), cache)


class WanVAE(nn.Module):
    def __init__(self, config: WanVAEConfig | dict):
        super().__init__()
        c = config if isinstance(config, WanVAEConfig) else WanVAEConfig(**config)
        if c.attn_scales:
            raise NotImplementedError("attention inside the down/up blocks (attn_scales) is not used by Wan2.1")
        self.config = c
        self.encoder = Encoder(c)
        self.quant_conv = CausalConv3d(2 * c.z_dim, 2 * c.z_dim, 1)
        self.post_quant_conv = CausalConv3d(c.z_dim, c.z_dim, 1)
        self.decoder = Decoder(c)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Video [B, 3, 1+4k, H, W] in [−1, 1] -> posterior moments [B, 2·z_dim, 1+k, H/s, W/s] (s = 8; 16 for Wan2.2)
        (mean first, then log-variance)."""
        t = x.shape[2]
        x = patchify(x, self.config.patch_size)
        cache = FeatCache()
        outs = [self.encoder(x[:, :, :1], cache)]
        for s in range(1, t, 4):
            outs.append(self.encoder(x[:, :, s : s + 4], cache))
        return self.quant_conv(torch.cat(outs, dim=2))

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[:, : self.config.z_dim]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents [B, z_dim, T, h, w] (un-normalised) -> video [B, 3, 1+4(T−1), s·h, s·w] in [−1, 1]."""
        x = self.post_quant_conv(z)
        cache = FeatCache()
        outs = [self.decoder(x[:, :, i : i + 1], cache, first=i == 0) for i in range(x.shape[2])]
        return unpatchify(torch.cat(outs, dim=2), self.config.patch_size).clamp(-1.0, 1.0)

    def _stats(self, ref: torch.Tensor):
        shape = (1, -1, 1, 1, 1)
        mean = torch.tensor(self.config.latents_mean, dtype=ref.dtype, device=ref.device).view(shape)
        std = torch.tensor(self.config.latents_std, dtype=ref.dtype, device=ref.device).view(shape)
        return mean, std

    def normalize_latents(self, mu: torch.Tensor) -> torch.Tensor:
        """What the diffusion model sees: (μ − mean) / std per channel."""
        mean, std = self._stats(mu)
        return (mu - mean) / std

    def denormalize_latents(self, z: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(z)
        return z * std + mean
