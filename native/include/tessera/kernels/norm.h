// Kernel "norm": LayerNorm or RMSNorm over the last dim C of x viewed as [B, L, C],
// then the affine weight/bias ([C], optional), then adaLN modulation:
//   y = n(x) * w + b;  y = y * (1 + scale) + shift
// scale/shift are [B, C] (mod_per_token = false) or [B, L, C] (true), optional.
// Stats in fp32. All tensors share dtype.
//
// Kernel "group_norm": channels-last x viewed as [B, S, C] (S = every position),
// statistics per (batch, group) over S x C/groups, then weight/bias [C] and an
// optional SiLU.
//
// Kernel "gated_residual": out = x + gate * y with x, y, out [B, L, C] and gate
// [B, C] (per sample) or [B, L, C] (per token).
#pragma once
#include <cstdint>

#include "tessera/dtype.h"

namespace tessera {

enum class NormKind : int { Layer = 0, Rms = 1 };

struct NormArgs {
  const void* x = nullptr;
  const void* weight = nullptr;
  const void* bias = nullptr;
  const void* scale = nullptr;
  const void* shift = nullptr;
  void* out = nullptr;
  DType dtype = DType::F32;
  NormKind kind = NormKind::Layer;
  int64_t batch = 0, len = 0, channels = 0;
  float eps = 1e-6f;
  bool mod_per_token = false;
};

struct GroupNormArgs {
  const void* x = nullptr;
  const void* weight = nullptr;
  const void* bias = nullptr;
  void* out = nullptr;
  DType dtype = DType::F32;
  int64_t batch = 0, spatial = 0, channels = 0, groups = 1;
  float eps = 1e-6f;
  bool silu = false;
};

struct GatedResidualArgs {
  const void* x = nullptr;
  const void* y = nullptr;
  const void* gate = nullptr;
  void* out = nullptr;
  DType dtype = DType::F32;
  int64_t batch = 0, len = 0, channels = 0;
  bool gate_per_token = false;
};

}  // namespace tessera
