// "upsample_nearest": channels-last x [B, F, H, W, C] -> out [B, F*st, H*sh, W*sw, C],
// out[b, f, h, w, c] = x[b, f/st, h/sh, w/sw, c]. (2D images run with F = 1, st = 1.)
#pragma once
#include <cstdint>

#include "tessera/dtype.h"

namespace tessera {

struct UpsampleArgs {
  const void* x = nullptr;
  void* out = nullptr;
  DType dtype = DType::F32;
  int64_t batch = 0, frames = 0, height = 0, width = 0, channels = 0;
  int64_t st = 1, sh = 1, sw = 1;
};

}  // namespace tessera
