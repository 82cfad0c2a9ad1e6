// CPU "conv3d" (f32).
#include <algorithm>

#include "cpu/gemm/gemm_f32.h"
#include "cpu/gemm/pack_f32.h"
#include "cpu/runtime/cpu_backend.h"
#include "conv3d_f32.h"

namespace tessera {
namespace {

// Stands in for padding: any run of a panel is at most kGemmKC long.
const float kZeros[kGemmKC] = {};

void pack_a(const void* ctx, int64_t, int64_t i0, int64_t rows, int64_t k0, int64_t kc, float* dst) {
  const Conv3dArgs& a = *static_cast<const Conv3dArgs*>(ctx);
  const float* x = static_cast<const float*>(a.x);
  const float* prev = static_cast<const float*>(a.prev);
  const int64_t cin = a.cin, taps_hw = a.kh * a.kw;
  // Input origin of each row's receptive field (may lie in the padding).
  int64_t b[kGemmMR], f0[kGemmMR], h0[kGemmMR], w0[kGemmMR];
  for (int64_t r = 0; r < rows; ++r) {
    int64_t i = i0 + r;
    const int64_t wo = i % a.out_width;
    i /= a.out_width;
    const int64_t ho = i % a.out_height;
    i /= a.out_height;
    const int64_t fo = i % a.out_frames;
    b[r] = i / a.out_frames;
    f0[r] = fo * a.stride_t - a.pad_t_front;
    h0[r] = ho * a.stride_h - a.pad_h;
    w0[r] = wo * a.stride_w - a.pad_w;
  }
  const float* src[kGemmMR];
  // The reduction index k = tap * cin + ci: walk it one tap (a run of channels) at a time.
  for (int64_t k = k0, end = k0 + kc; k < end;) {
    const int64_t tap = k / cin, ci = k % cin, len = std::min(cin - ci, end - k);
    const int64_t dt = tap / taps_hw, dh = tap % taps_hw / a.kw, dw = tap % a.kw;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t f = f0[r] + dt, h = h0[r] + dh, w = w0[r] + dw;
      const float* p = kZeros;
      if (h >= 0 && h < a.height && w >= 0 && w < a.width) {
        if (f >= 0 && f < a.frames) {
          p = x + (((b[r] * a.frames + f) * a.height + h) * a.width + w) * cin + ci;
        } else if (f < 0 && f >= -a.prev_frames) {
          // The cache holds the frames just before this chunk: the last ones of the front padding.
          p = prev + (((b[r] * a.prev_frames + (a.prev_frames + f)) * a.height + h) * a.width + w) * cin + ci;
        }
      }
      src[r] = p;
    }
    pack_transpose_rows(src, rows, len, kGemmMR, dst + (k - k0) * kGemmMR);
    k += len;
  }
}

void pack_b(const void* ctx, int64_t, int64_t j0, int64_t cols, int64_t k0, int64_t kc, float* dst) {
  const Conv3dArgs& a = *static_cast<const Conv3dArgs*>(ctx);
  const float* w = static_cast<const float*>(a.weight);
  const int64_t cin = a.cin, taps = a.kt * a.kh * a.kw, kdim = cin * taps;
  if (taps == 1) {
    // A pointwise conv's weight [Cout, Cin] is a transposed B.
    pack_rows_transposed(w + j0 * kdim + k0, kdim, cols, kc, kGemmNR, dst);
    return;
  }
  // B[tap * cin + ci, n] = weight[n, ci, tap]: PyTorch keeps taps innermost, we need channels.
  for (int64_t c = 0; c < cols; ++c) {
    const float* wn = w + (j0 + c) * kdim;
    int64_t tap = k0 / cin, ci = k0 % cin;
    for (int64_t kk = 0; kk < kc; ++kk) {
      dst[kk * kGemmNR + c] = wn[ci * taps + tap];
      if (++ci == cin) {
        ci = 0;
        ++tap;
      }
    }
  }
}

void conv3d_cpu(const Conv3dArgs& a, const ExecCtx& ctx) { conv3d_f32(a, ctx.pool); }

}  // namespace

void conv3d_f32(const Conv3dArgs& a, ThreadPool* pool) {
  if (a.dtype != DType::F32)
    throw OpError("conv3d", "x", std::string("has dtype ") + dtype_name(a.dtype) + "; the CPU backend computes f32 only");
  GemmDesc d;
  d.m = a.batch * a.out_frames * a.out_height * a.out_width;
  d.n = a.cout;
  d.k = a.cin * a.kt * a.kh * a.kw;
  d.pack_a = pack_a;
  d.pack_b = pack_b;
  d.ctx = &a;
  d.c = static_cast<float*>(a.out);
  d.ldc = a.cout;
  d.bias = static_cast<const float*>(a.bias);
  gemm_f32(d, pool);
}

TESSERA_REGISTER_KERNEL(cpu_kernels, "conv3d", Conv3dArgs, conv3d_cpu);

}  // namespace tessera
