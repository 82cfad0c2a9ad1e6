"""Tessera's Gaussian noise, reproduced in numpy: the stream `randn(shape, {seed})` draws
on every backend (native/include/tessera/rng.h), so a golden pipeline run can start
from the same noise as the engine's own `generate({seed})` without a noise option.

Element e of the stream (row-major over the shape) comes from pair p = e // 2:
  (r0, r1, r2, r3) = Philox4x32-10(counter = (p lo, p hi, 0, 0), key = (seed lo, seed hi))
  u1 = (r0 + 1)·2^-32 in (0, 1], u2 = r1·2^-32 in [0, 1)
  radius = sqrt(−2 ln u1), angle = 2π·u2 (double); even e → radius·cos, odd e → radius·sin,
  rounded to float32.
Philox4x32-10 is Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC 2011)."""

from __future__ import annotations

import numpy as np

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_LO = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)


def philox4x32_10(counter: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Philox4x32-10 of 64-bit counters (as (lo, hi, 0, 0)) under a 64-bit key; four uint64 arrays of 32-bit words."""
    c0 = counter & _LO
    c1 = counter >> _32
    c2 = np.zeros_like(counter)
    c3 = np.zeros_like(counter)
    k0, k1 = seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> _32) ^ c1 ^ np.uint64(k0), p1 & _LO, (p0 >> _32) ^ c3 ^ np.uint64(k1), p0 & _LO
        k0 = (k0 + _W0) & 0xFFFFFFFF
        k1 = (k1 + _W1) & 0xFFFFFFFF
    return c0, c1, c2, c3


def tessera_randn(shape, seed: int, offset: int = 0) -> np.ndarray:
    """float32 standard normals, equal to Tessera's randn(shape, {seed, offset})."""
    n = int(np.prod(shape))
    e = np.arange(offset, offset + n, dtype=np.uint64)
    r0, r1, _, _ = philox4x32_10(e >> np.uint64(1), seed)
    u1 = (r0.astype(np.float64) + 1.0) * 2.0**-32
    u2 = r1.astype(np.float64) * 2.0**-32
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    out = np.where((e & np.uint64(1)) == 1, radius * np.sin(angle), radius * np.cos(angle))
    return out.astype(np.float32).reshape(shape)
