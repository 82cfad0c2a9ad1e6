"""Tessera's `randn` (native/include/tessera/rng.h) in PyTorch, so the baseline side can
regenerate the inputs our side draws on the GPU, bit for bit (up to the last ulp of the
double-precision log/sin/cos, which the float rounding then absorbs).

Element e: pair p = e // 2 -> Philox4x32-10(counter = (p lo, p hi, 0, 0), key = (seed lo, seed hi));
u1 = (r0 + 1) 2^-32, u2 = r1 2^-32; radius = sqrt(-2 ln u1), angle = 2 pi u2 (double);
even e -> radius cos(angle), odd e -> radius sin(angle), rounded to float32 (then to the dtype, RNE).
"""
import torch

_M32 = 0xFFFFFFFF


def _mulhilo(m, c):
    """(hi, lo) 32-bit halves of the 64-bit product of the constant m and c (int64 tensor, values < 2^32),
    computed from 16-bit halves of c so that no int64 product overflows."""
    a0 = c & 0xFFFF
    a1 = c >> 16
    p0 = a0 * m  # < 2^48
    p1 = a1 * m  # < 2^48
    lo_full = p0 + ((p1 & 0xFFFF) << 16)  # < 2^49
    lo = lo_full & _M32
    hi = (p1 >> 16) + (lo_full >> 32)
    return hi & _M32, lo


def philox4x32_10(counter, seed):
    """counter: int64 tensor (values < 2^63); seed: int. Returns (r0, r1) as int64 tensors."""
    c0 = counter & _M32
    c1 = (counter >> 32) & _M32
    c2 = torch.zeros_like(c0)
    c3 = torch.zeros_like(c0)
    k0 = seed & _M32
    k1 = (seed >> 32) & _M32
    for _ in range(10):
        hi0, lo0 = _mulhilo(0xD2511F53, c0)
        hi1, lo1 = _mulhilo(0xCD9E8D57, c2)
        n0 = hi1 ^ c1 ^ k0
        n2 = hi0 ^ c3 ^ k1
        c0, c1, c2, c3 = n0, lo1, n2, lo0
        k0 = (k0 + 0x9E3779B9) & _M32
        k1 = (k1 + 0xBB67AE85) & _M32
    return c0, c1


def randn(shape, seed, dtype=torch.float32, device="cpu", offset=0):
    n = 1
    for d in shape:
        n *= d
    if n == 0:
        return torch.empty(shape, dtype=dtype, device=device)
    first = offset // 2
    last = (offset + n - 1) // 2
    pairs = torch.arange(first, last + 1, dtype=torch.int64, device=device)
    r0, r1 = philox4x32_10(pairs, seed)
    del pairs
    u1 = (r0.to(torch.float64) + 1.0) * 2.3283064365386963e-10
    u2 = r1.to(torch.float64) * 2.3283064365386963e-10
    del r0, r1
    radius = torch.sqrt(-2.0 * torch.log(u1))
    angle = 6.283185307179586 * u2
    del u1, u2
    both = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1).reshape(-1)
    del radius, angle
    start = offset - 2 * first
    x = both[start : start + n].to(torch.float32)
    del both
    return x.to(dtype).reshape(shape)
