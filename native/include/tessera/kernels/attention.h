// Kernel "attention": O = softmax(scale * Q K^T + bias + mask) V per (batch, head),
// with Q [B, Lq, H, D], K and V [B, Lk, H, D], O [B, Lq, H, D], all contiguous, one dtype.
//
// Token grouping (self-attention over a video of grid F x Hh x W tokens, in f-h-w order):
//   Full     - every token attends to every token.
//   Spatial  - a token attends only to tokens of its own frame.
//   Temporal - a token attends only to tokens at its own (h, w) in other frames.
// RoPE (when rope_dims sum to D): Q and K are rotated before the product. Head dim is
// split into [dt, dh, dw] channels (each even); within an axis's slice the pair
// (x[2i], x[2i+1]) is rotated by angle pos_axis * theta^(-2i/d_axis), where pos is
// the token's (f, h, w) coordinate plus rope_offset. This is Wan2.1's 3D RoPE.
// key_lengths (i32 [B], optional): keys j >= key_lengths[b] are masked out.
// bias (f32, optional): added to the logits; [H, Lq, Lk], or [B, H, Lq, Lk] when
// bias_batch_stride != 0 (T5 relative-position bias). A query row whose keys are all
// masked produces zeros.
#pragma once
#include <cstdint>

#include "tessera/dtype.h"

namespace tessera {

enum class AttnGroup : int { Full = 0, Spatial = 1, Temporal = 2 };

struct AttentionArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* o = nullptr;
  DType dtype = DType::F32;
  int64_t batch = 0, lq = 0, lk = 0, heads = 0, head_dim = 0;
  float scale = 1.f;
  AttnGroup group = AttnGroup::Full;
  int64_t grid[3] = {0, 0, 0};  // F, Hh, W (needed for grouping and RoPE)
  bool rope = false;
  int64_t rope_dims[3] = {0, 0, 0};
  int64_t rope_offset[3] = {0, 0, 0};
  float rope_theta = 10000.f;
  const int32_t* key_lengths = nullptr;
  const float* bias = nullptr;
  int64_t bias_batch_stride = 0;  // elements; 0 = shared across batch
};

}  // namespace tessera
