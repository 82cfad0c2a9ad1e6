"""The engine's Gaussian noise stream (native/include/tessera/rng.h), in numpy: element
e of randn(shape, seed) comes from Philox4x32-10 at counter e // 2 with key = seed,
turned into a normal by Box-Muller in double (cos for even e, sin for odd), rounded to
float32. With it a golden pipeline run starts from exactly the noise the engine draws
for a seed, so the fixture needs no noise input the engine would have to accept."""

from __future__ import annotations

import numpy as np

M0 = np.uint64(0xD2511F53)
M1 = np.uint64(0xCD9E8D57)
W0 = np.uint32(0x9E3779B9)
W1 = np.uint32(0xBB67AE85)
LO = np.uint64(0xFFFFFFFF)


def philox4x32_10(counter: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    c0 = (counter & LO).astype(np.uint32)
    c1 = (counter >> np.uint64(32)).astype(np.uint32)
    c2 = np.zeros_like(c0)
    c3 = np.zeros_like(c0)
    k0 = np.uint32(seed & 0xFFFFFFFF)
    k1 = np.uint32((seed >> 32) & 0xFFFFFFFF)
    with np.errstate(over="ignore"):
        for _ in range(10):
            p0 = M0 * c0.astype(np.uint64)
            p1 = M1 * c2.astype(np.uint64)
            hi0, lo0 = (p0 >> np.uint64(32)).astype(np.uint32), (p0 & LO).astype(np.uint32)
            hi1, lo1 = (p1 >> np.uint64(32)).astype(np.uint32), (p1 & LO).astype(np.uint32)
            c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
            k0 = np.uint32(k0 + W0)
            k1 = np.uint32(k1 + W1)
    return c0, c1, c2, c3


def engine_randn(shape, seed: int, offset: int = 0) -> np.ndarray:
    """float32 array equal to the engine's randn(shape, {seed, offset})."""
    n = int(np.prod(shape))
    e = np.arange(offset, offset + n, dtype=np.uint64)
    r0, r1, _, _ = philox4x32_10(e >> np.uint64(1), seed)
    u1 = (r0.astype(np.float64) + 1.0) * 2.3283064365386963e-10
    u2 = r1.astype(np.float64) * 2.3283064365386963e-10
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 6.283185307179586 * u2
    out = np.where((e & np.uint64(1)) == 1, radius * np.sin(angle), radius * np.cos(angle))
    return out.astype(np.float32).reshape(shape)
