// Kernel "conv3d": channels-last 3D convolution (2D convs run through it with F = 1).
// x [B, F, H, W, Cin], weight PyTorch layout [Cout, Cin, kt, kh, kw], bias [Cout] or null,
// out [B, Fo, Ho, Wo, Cout].
// Time is padded with pad_t_front frames before x and pad_t_back after; when `prev`
// is given ([B, prev_frames, H, W, Cin], prev_frames <= pad_t_front) its frames
// replace the last prev_frames of the front padding: this is the causal conv's cache
// of the previous chunk. Space is zero-padded by pad_h / pad_w on both sides.
// Fo = (pad_t_front + F + pad_t_back - kt) / stride_t + 1, likewise Ho, Wo.
#pragma once
#include <cstdint>

#include "tessera/dtype.h"

namespace tessera {

struct Conv3dArgs {
  const void* x = nullptr;
  const void* prev = nullptr;
  const void* weight = nullptr;
  const void* bias = nullptr;
  void* out = nullptr;
  DType dtype = DType::F32;
  int64_t batch = 0, frames = 0, height = 0, width = 0, cin = 0, cout = 0;
  int64_t prev_frames = 0;
  int64_t kt = 1, kh = 1, kw = 1;
  int64_t stride_t = 1, stride_h = 1, stride_w = 1;
  int64_t pad_t_front = 0, pad_t_back = 0, pad_h = 0, pad_w = 0;
  int64_t out_frames = 0, out_height = 0, out_width = 0;
};

}  // namespace tessera
