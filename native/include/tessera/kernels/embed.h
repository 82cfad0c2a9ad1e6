// "embedding": out[i, :] = table[ids[i], :], ids i32 [n], table [vocab, dim], out [n, dim].
//   An id outside [0, vocab) yields a row of NaN so that the mistake is visible downstream.
// "timestep_embedding": t f32 [n] -> out [n, dim] (dim even, out f32/bf16/f16):
//   half = dim / 2, freq_j = exp(-ln(max_period) * j / (half - freq_shift)), arg = t * freq_j;
//   out = [cos(arg), sin(arg)] when cos_first (Wan2.1), else [sin(arg), cos(arg)].
// "randn": standard normal numbers from a counter-based generator, identical on every
//   backend: element i takes Philox4x32-10 with key (seed lo, seed hi) and counter
//   (p lo, p hi, 0, 0) with p = (offset + i) / 2: rng.h has the exact recipe.
#pragma once
#include <cstdint>

#include "tessera/dtype.h"

namespace tessera {

struct EmbeddingArgs {
  const int32_t* ids = nullptr;
  const void* table = nullptr;
  void* out = nullptr;
  DType dtype = DType::F32;
  int64_t n = 0, vocab = 0, dim = 0;
};

struct TimestepEmbeddingArgs {
  const float* t = nullptr;
  void* out = nullptr;
  DType dtype = DType::F32;
  int64_t n = 0, dim = 0;
  float max_period = 10000.f;
  float freq_shift = 0.f;
  bool cos_first = true;
};

struct RandnArgs {
  void* out = nullptr;
  DType dtype = DType::F32;
  int64_t n = 0;
  uint64_t seed = 0;
  uint64_t offset = 0;  // element index of out[0] within the seed's stream
};

}  // namespace tessera
