// Kernel "matmul": C[b] = act(alpha * op(A[b]) @ op(B[b]) + bias), row-major.
// op(A) is [M, K] (A stored [K, M] when trans_a), op(B) is [K, N] (B stored [N, K] when trans_b).
// All of A, B, bias and C share `dtype` (f32, bf16 or f16); accumulation is fp32.
#pragma once
#include <cstdint>

#include "tessera/dtype.h"

namespace tessera {

enum class Epilogue : int { None = 0, GeluTanh = 1, Silu = 2 };

struct MatmulArgs {
  const void* a = nullptr;
  const void* b = nullptr;
  const void* bias = nullptr;  // [N] or null
  void* c = nullptr;
  DType dtype = DType::F32;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // elements between batches; 0 = broadcast
  float alpha = 1.f;
  Epilogue epilogue = Epilogue::None;
};

}  // namespace tessera
