// Video tensors are channels-last: [B, F, H, W, C].
//
// Kernel "patch_embed3d": out[b, t, :] = W · patch(t) + bias, where token t walks the
// (F/pt, H/ph, W/pw) grid in f-h-w order, weight is PyTorch Conv3d layout
// [D, C, pt, ph, pw] and out is [B, L, D]. x, weight, bias, out share dtype.
//
// Kernel "unpatchify3d": x [B, L, pt*ph*pw*C] with the last dim ordered (pt, ph, pw, C)
// (C fastest, as Wan's unpatchify reads it) -> out [B, Fg*pt, Hg*ph, Wg*pw, C].
#pragma once
#include <cstdint>

#include "tessera/dtype.h"

namespace tessera {

struct PatchEmbedArgs {
  const void* x = nullptr;
  const void* weight = nullptr;
  const void* bias = nullptr;  // [D] or null
  void* out = nullptr;
  DType dtype = DType::F32;
  int64_t batch = 0, frames = 0, height = 0, width = 0, channels = 0, dim = 0;
  int64_t pt = 1, ph = 1, pw = 1;
};

struct UnpatchifyArgs {
  const void* x = nullptr;
  void* out = nullptr;
  DType dtype = DType::F32;
  int64_t batch = 0, gf = 0, gh = 0, gw = 0, channels = 0;
  int64_t pt = 1, ph = 1, pw = 1;
};

}  // namespace tessera
