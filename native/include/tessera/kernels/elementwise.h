// Memory-bound kernels.
//
// "unary":   out[i] = f(alpha * x[i] + beta), contiguous, x and out share dtype.
// "binary":  out = a (op) b with numpy broadcasting: a and b are views already
//            broadcast to out's shape (stride 0 on broadcast dims); out contiguous.
//            axpby computes alpha * a + beta * b. All three share dtype.
// "softmax": over the last dim of a contiguous [rows, cols] tensor, fp32 math.
// "copy":    strided src -> strided dst of the same shape, converting dtype if they differ
//            (f32/bf16/f16/i32/u8 in any pair; float -> int truncates toward zero,
//            -> u8 also clamps to [0, 255]). Serves cast, permute, slice, concat, contiguous.
// "fill":    every element of a contiguous out = value.
#pragma once
#include <cstdint>

#include "tessera/dtype.h"
#include "tessera/tensor.h"

namespace tessera {

enum class UnaryOp : int { Identity = 0, Silu = 1, GeluTanh = 2, Exp = 3, Sigmoid = 4, Square = 5, Sqrt = 6, Rsqrt = 7, Gelu = 8 };
enum class BinaryOp : int { Add = 0, Sub = 1, Mul = 2, Div = 3, Axpby = 4, Max = 5, Min = 6 };

struct UnaryArgs {
  const void* x = nullptr;
  void* out = nullptr;
  DType dtype = DType::F32;
  int64_t n = 0;
  UnaryOp op = UnaryOp::Identity;
  float alpha = 1.f, beta = 0.f;
};

struct BinaryArgs {
  View a, b;      // broadcast to out's shape
  void* out = nullptr;
  DType dtype = DType::F32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {0};
  BinaryOp op = BinaryOp::Add;
  float alpha = 1.f, beta = 1.f;
};

struct SoftmaxArgs {
  const void* x = nullptr;
  void* out = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;
};

struct CopyArgs {
  View src, dst;  // same shape
};

struct FillArgs {
  void* out = nullptr;
  DType dtype = DType::F32;
  int64_t n = 0;
  double value = 0.0;
};

}  // namespace tessera
