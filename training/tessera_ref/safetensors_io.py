"""A minimal safetensors reader/writer over numpy.

Written out rather than imported so that the fixtures' bytes depend only on this file
(the `safetensors` package orders tensors by dtype alignment and may change its
padding) and so the scripts also run where that package is absent."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

import numpy as np

_DTYPES = {
    np.dtype("float32"): "F32",
    np.dtype("float64"): "F64",
    np.dtype("float16"): "F16",
    np.dtype("int32"): "I32",
    np.dtype("int64"): "I64",
    np.dtype("uint8"): "U8",
}
_NP = {v: k for k, v in _DTYPES.items()}


def _as_numpy(t) -> np.ndarray:
    if hasattr(t, "detach"):  # a torch tensor, without importing torch here
        t = t.detach().cpu().numpy()
    return np.ascontiguousarray(t)


def write_safetensors(path: str, tensors: Mapping[str, object], metadata: Mapping[str, str] | None = None) -> int:
    """Writes tensors in the given order; returns the file size in bytes."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        a = _as_numpy(t)
        if a.dtype not in _DTYPES:
            raise TypeError(f"{name}: dtype {a.dtype} not supported")
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode()
    # The data section starts 8-byte aligned, as the reference implementation pads it.
    hj += b" " * ((8 - (8 + len(hj)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    return 8 + len(hj) + offset


def read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, info in header.items():
        s, e = info["data_offsets"]
        out[name] = np.frombuffer(data[base + s : base + e], dtype=_NP[info["dtype"]]).reshape(info["shape"]).copy()
    return out, meta
