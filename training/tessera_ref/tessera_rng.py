"""Tessera's Gaussian noise (native/include/tessera/rng.h) in numpy, so a reference
pipeline run starts from the very noise the engine draws for a seed. Element e of the
stream: Philox4x32-10 of pair e // 2 keyed by the seed, Box–Muller in float64, the
cosine for even e and the sine for odd, rounded to float32."""

from __future__ import annotations

import numpy as np

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF


def _philox(counter: np.ndarray, seed: int):
    c0 = (counter & MASK).astype(np.uint64)
    c1 = (counter >> np.uint64(32)).astype(np.uint64)
    c2 = np.zeros_like(c0)
    c3 = np.zeros_like(c0)
    k0, k1 = seed & MASK, (seed >> 32) & MASK
    for _ in range(10):
        p0 = np.uint64(M0) * c0
        p1 = np.uint64(M1) * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & np.uint64(MASK)
        hi1, lo1 = p1 >> np.uint64(32), p1 & np.uint64(MASK)
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
        k0 = (k0 + W0) & MASK
        k1 = (k1 + W1) & MASK
    return c0, c1


def tessera_randn(shape, seed: int, offset: int = 0) -> np.ndarray:
    n = int(np.prod(shape))
    e = np.arange(offset, offset + n, dtype=np.uint64)
    r0, r1 = _philox(e >> np.uint64(1), seed)
    u1 = (r0.astype(np.float64) + 1.0) * 2.3283064365386963e-10
    u2 = r1.astype(np.float64) * 2.3283064365386963e-10
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 6.283185307179586 * u2
    v = np.where((e & np.uint64(1)) == 1, radius * np.sin(angle), radius * np.cos(angle))
    return v.astype(np.float32).reshape(shape)
