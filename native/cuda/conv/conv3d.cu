// CUDA "conv3d" and the implicit-GEMM engine shared with "patch_embed3d" (see conv_gemm.h).
#include <mma.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda/common/dtype.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/conv/conv_gemm.h"
#include "cuda/runtime/cuda_backend.h"

namespace tessera {
namespace {

// Problem geometry in 32-bit dims (checked on the host); element offsets are 64-bit.
struct Geom {
  const void* x;
  const void* prev;
  const void* w;  // [N, K], k = ((it * kh + ih) * kw + iw) * Cin + ci
  const void* bias;
  void* out;  // [M, N]
  int F, H, W, Cin, P;  // P: prev frames in use (0 without prev)
  int kh, kw, khw;
  int st, sh, sw;
  int pad_front, pad_h, pad_w;
  int Fo, Ho, Wo;
  int64_t M;
  int N, K;
  bool out_vec;  // N % 8 == 0 and out 16-byte aligned: 8-wide output stores
};

// Per output row: batch (-1 past M) and the input coordinates of tap (0, 0, 0).
__device__ __forceinline__ void row_origin(const Geom& g, int64_t m, int& b, int& f0, int& h0, int& w0) {
  if (m >= g.M) {
    b = -1;
    f0 = h0 = w0 = 0;
    return;
  }
  int64_t t = m / g.Wo;
  const int wo = static_cast<int>(m - t * g.Wo);
  int64_t t2 = t / g.Ho;
  const int ho = static_cast<int>(t - t2 * g.Ho);
  const int64_t t3 = t2 / g.Fo;
  const int fo = static_cast<int>(t2 - t3 * g.Fo);
  b = static_cast<int>(t3);
  f0 = fo * g.st - g.pad_front;
  h0 = ho * g.sh - g.pad_h;
  w0 = wo * g.sw - g.pad_w;
}

// Address of A[m, k] (k < K) for the row with origin (b, f0, h0, w0), or null for padding.
// Frame f < 0 lies in the front padding, whose last P frames are prev's frames.
template <class T>
__device__ __forceinline__ const T* a_ptr(const Geom& g, int b, int f0, int h0, int w0, int k) {
  if (b < 0) return nullptr;
  const int tap = k / g.Cin, ci = k - tap * g.Cin;
  const int it = tap / g.khw, r = tap - it * g.khw;
  const int ih = r / g.kw, iw = r - ih * g.kw;
  const int h = h0 + ih, w = w0 + iw;
  if (h < 0 || h >= g.H || w < 0 || w >= g.W) return nullptr;
  const int f = f0 + it;
  if (f >= g.F) return nullptr;
  if (f >= 0)
    return static_cast<const T*>(g.x) + (((static_cast<int64_t>(b) * g.F + f) * g.H + h) * g.W + w) * g.Cin + ci;
  const int j = f + g.P;
  if (j < 0) return nullptr;
  return static_cast<const T*>(g.prev) + (((static_cast<int64_t>(b) * g.P + j) * g.H + h) * g.W + w) * g.Cin + ci;
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int n = valid ? 16 : 0;  // 0 source bytes: the 16 destination bytes are zero-filled
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ uint16_t raw16(const void* p) { return *static_cast<const uint16_t*>(p); }

// ---- bf16 / f16: tensor cores ----

constexpr int TBM = 128, TBK = 32, TLD = TBK + 8, TTHREADS = 256;

// Tile TBM x BN, 8 warps as WM (M) x WN (N), each warp (TBM / WM) x (BN / WN) in
// 16 x 16 fragments: BN 128 -> 2 x 4 warps of 64 x 32; BN 64 -> 4 x 2 of 32 x 32;
// BN 16 -> 8 x 1 of 16 x 16 (narrow outputs such as a 3-channel RGB conv).
// VEC: Cin % 8 == 0 and 16-byte aligned x / prev / w, so every 8-wide k chunk is one
// contiguous 16-byte run (one tap, 8 channels) loaded with cp.async.
template <class T, bool VEC, int BN, int WM, int WN>
__global__ void __launch_bounds__(TTHREADS) conv_wmma_kernel(Geom g, int64_t tiles_n) {
  using namespace nvcuda;
  static_assert(WM * WN == TTHREADS / 32, "8 warps");
  constexpr int FM = TBM / WM / 16, FN = BN / WN / 16;
  static_assert(FM >= 1 && FN >= 1 && FM * WM * 16 == TBM && FN * WN * 16 == BN, "warp tiling");
  __shared__ __align__(128) T As[2][TBM][TLD];
  __shared__ __align__(128) T Bs[2][BN][TLD];
  __shared__ int rb[TBM], rf[TBM], rh[TBM], rw[TBM];
  const int tid = threadIdx.x;
  const int64_t tile = blockIdx.x;
  const int64_t m0 = (tile / tiles_n) * TBM;
  const int n0 = static_cast<int>(tile % tiles_n) * BN;
  for (int r = tid; r < TBM; r += TTHREADS) row_origin(g, m0 + r, rb[r], rf[r], rh[r], rw[r]);
  __syncthreads();
  const T* wgt = static_cast<const T*>(g.w);
  const T* xb = static_cast<const T*>(g.x);

  auto load_tile = [&](int kt, int buf) {
    const int k0 = kt * TBK;
    if (VEC) {
#pragma unroll
      for (int c = tid; c < TBM * TBK / 8; c += TTHREADS) {
        const int r = c / (TBK / 8), kc = c % (TBK / 8);
        const int k = k0 + kc * 8;
        const T* src = k < g.K ? a_ptr<T>(g, rb[r], rf[r], rh[r], rw[r], k) : nullptr;
        cp_async16(&As[buf][r][kc * 8], src ? src : xb, src != nullptr);
      }
#pragma unroll
      for (int c = tid; c < BN * TBK / 8; c += TTHREADS) {
        const int r = c / (TBK / 8), kc = c % (TBK / 8);
        const int k = k0 + kc * 8, n = n0 + r;
        const bool ok = n < g.N && k < g.K;
        cp_async16(&Bs[buf][r][kc * 8], ok ? wgt + static_cast<int64_t>(n) * g.K + k : wgt, ok);
      }
    } else {
      for (int e = tid; e < TBM * TBK; e += TTHREADS) {
        const int r = e / TBK, kk = e % TBK, k = k0 + kk;
        const T* src = k < g.K ? a_ptr<T>(g, rb[r], rf[r], rh[r], rw[r], k) : nullptr;
        reinterpret_cast<uint16_t*>(&As[buf][r][0])[kk] = src ? raw16(src) : uint16_t{0};
      }
      for (int e = tid; e < BN * TBK; e += TTHREADS) {
        const int r = e / TBK, kk = e % TBK, k = k0 + kk, n = n0 + r;
        reinterpret_cast<uint16_t*>(&Bs[buf][r][0])[kk] =
            (n < g.N && k < g.K) ? raw16(wgt + static_cast<int64_t>(n) * g.K + k) : uint16_t{0};
      }
    }
  };

  const int warp = tid >> 5, lane = tid & 31;
  const int wm = warp / WN, wn = warp % WN;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.f);

  const int nk = (g.K + TBK - 1) / TBK;
  if (nk > 0) load_tile(0, 0);
  cp_async_commit();
  for (int t = 0; t < nk; ++t) {
    if (t + 1 < nk) load_tile(t + 1, (t + 1) & 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const int buf = t & 1;
#pragma unroll
    for (int kk = 0; kk < TBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[FM];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb[FN];
#pragma unroll
      for (int i = 0; i < FM; ++i) wmma::load_matrix_sync(fa[i], &As[buf][(wm * FM + i) * 16][kk], TLD);
#pragma unroll
      for (int j = 0; j < FN; ++j) wmma::load_matrix_sync(fb[j], &Bs[buf][(wn * FN + j) * 16][kk], TLD);
#pragma unroll
      for (int i = 0; i < FM; ++i)
#pragma unroll
        for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }
  cp_async_wait<0>();
  __syncthreads();

  // Epilogue through a 16 x 16 fp32 scratch per warp (in the now idle A buffers).
  float* scratch = reinterpret_cast<float*>(&As[0][0][0]) + warp * 256;
  T* out = static_cast<T*>(g.out);
  const T* bias = static_cast<const T*>(g.bias);
  const int row = lane >> 1, col0 = (lane & 1) * 8;
#pragma unroll
  for (int i = 0; i < FM; ++i) {
#pragma unroll
    for (int j = 0; j < FN; ++j) {
      wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      const int64_t m = m0 + (wm * FM + i) * 16 + row;
      const int nb = n0 + (wn * FN + j) * 16 + col0;
      if (m < g.M && nb < g.N) {
        T* o = out + m * g.N + nb;
        const float* s = scratch + row * 16 + col0;
        if (g.out_vec && nb + 8 <= g.N) {
          Pack<T, 8> pk;
#pragma unroll
          for (int q = 0; q < 8; ++q) Elem<T>::store(pk.v, q, s[q] + (bias ? Elem<T>::load(bias, nb + q) : 0.f));
          *reinterpret_cast<Pack<T, 8>*>(o) = pk;
        } else {
          for (int q = 0; q < 8 && nb + q < g.N; ++q)
            Elem<T>::store(o, q, s[q] + (bias ? Elem<T>::load(bias, nb + q) : 0.f));
        }
      }
      __syncwarp();
    }
  }
}

// ---- f32: SIMT tile ----

constexpr int SBM = 64, SBN = 64, SBK = 16, STHREADS = 256;

// 16 x 16 threads, each 4 x 4 outputs at rows ty + 16 i, columns tx + 16 j.
// VEC: Cin % 4 == 0 and 16-byte aligned x / prev / w (float4 k chunks).
template <bool VEC>
__global__ void __launch_bounds__(STHREADS) conv_simt_kernel(Geom g, int64_t tiles_n) {
  __shared__ float As[SBK][SBM + 4];
  __shared__ float Bs[SBK][SBN + 4];
  __shared__ int rb[SBM], rf[SBM], rh[SBM], rw[SBM];
  const int tid = threadIdx.x;
  const int64_t tile = blockIdx.x;
  const int64_t m0 = (tile / tiles_n) * SBM;
  const int n0 = static_cast<int>(tile % tiles_n) * SBN;
  for (int r = tid; r < SBM; r += STHREADS) row_origin(g, m0 + r, rb[r], rf[r], rh[r], rw[r]);
  __syncthreads();
  const float* wgt = static_cast<const float*>(g.w);
  const int tx = tid & 15, ty = tid >> 4;
  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;

  for (int k0 = 0; k0 < g.K; k0 += SBK) {
    if (VEC) {
      const int r = tid >> 2, kc = tid & 3, k = k0 + kc * 4;  // 64 rows x 4 chunks
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      const float* src = k < g.K ? a_ptr<float>(g, rb[r], rf[r], rh[r], rw[r], k) : nullptr;
      if (src) v = *reinterpret_cast<const float4*>(src);
      As[kc * 4 + 0][r] = v.x;
      As[kc * 4 + 1][r] = v.y;
      As[kc * 4 + 2][r] = v.z;
      As[kc * 4 + 3][r] = v.w;
      const int n = n0 + r;
      float4 u = make_float4(0.f, 0.f, 0.f, 0.f);
      if (n < g.N && k < g.K) u = *reinterpret_cast<const float4*>(wgt + static_cast<int64_t>(n) * g.K + k);
      Bs[kc * 4 + 0][r] = u.x;
      Bs[kc * 4 + 1][r] = u.y;
      Bs[kc * 4 + 2][r] = u.z;
      Bs[kc * 4 + 3][r] = u.w;
    } else {
      for (int e = tid; e < SBM * SBK; e += STHREADS) {
        const int r = e / SBK, kk = e % SBK, k = k0 + kk;
        const float* src = k < g.K ? a_ptr<float>(g, rb[r], rf[r], rh[r], rw[r], k) : nullptr;
        As[kk][r] = src ? *src : 0.f;
        const int n = n0 + r;
        Bs[kk][r] = (n < g.N && k < g.K) ? wgt[static_cast<int64_t>(n) * g.K + k] : 0.f;
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < SBK; ++kk) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }

  float* out = static_cast<float*>(g.out);
  const float* bias = static_cast<const float*>(g.bias);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty + 16 * i;
    if (m >= g.M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = n0 + tx + 16 * j;
      if (n < g.N) out[m * g.N + n] = acc[i][j] + (bias ? bias[n] : 0.f);
    }
  }
}

// ---- weight reorder: [N, Cin, taps] -> [N, taps, Cin] ----

template <class E>
__global__ void reorder_weight_kernel(const E* __restrict__ w, E* __restrict__ wp, int64_t total, int64_t cin,
                                      int64_t taps) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t per_n = cin * taps;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t n = i / per_n, rem = i - n * per_n;
    const int64_t tap = rem / cin, ci = rem - tap * cin;
    wp[i] = w[(n * cin + ci) * taps + tap];
  }
}

template <class T, int BN, int WM, int WN>
void launch_wmma_bn(const Geom& g, bool vec, cudaStream_t s, const char* name) {
  const int64_t tiles_n = (g.N + BN - 1) / BN;
  const int64_t tiles = (g.M + TBM - 1) / TBM * tiles_n;
  if (tiles > INT_MAX) throw DeviceError(std::string("CUDA kernel '") + name + "': output too large");
  const unsigned grid = static_cast<unsigned>(tiles);
  if (vec) conv_wmma_kernel<T, true, BN, WM, WN><<<grid, TTHREADS, 0, s>>>(g, tiles_n);
  else conv_wmma_kernel<T, false, BN, WM, WN><<<grid, TTHREADS, 0, s>>>(g, tiles_n);
}

// The output-channel tile follows N so that narrow convs waste few tensor-core columns.
template <class T>
void launch_wmma(const Geom& g, bool vec, cudaStream_t s, const char* name) {
  if (g.N <= 16) launch_wmma_bn<T, 16, 8, 1>(g, vec, s, name);
  else if (g.N <= 64) launch_wmma_bn<T, 64, 4, 2>(g, vec, s, name);
  else launch_wmma_bn<T, 128, 2, 4>(g, vec, s, name);
}

void check_int(const char* name, const char* what, int64_t v) {
  if (v < 0 || v > INT_MAX)
    throw DeviceError(std::string("CUDA kernel '") + name + "': " + what + " = " + std::to_string(v) +
                      " is outside the supported range");
}

}  // namespace

std::shared_ptr<Storage> weight_nk(const Conv3dArgs& a, const ExecCtx& ctx, const char* name) {
  const int64_t taps = a.kt * a.kh * a.kw;
  const int64_t K = taps * a.cin;
  if (taps <= 1 || K <= 0) return nullptr;
  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream);
  const size_t es = dtype_size(a.dtype);
  const int64_t total = a.cout * K;
  std::shared_ptr<Storage> wbuf = ctx.backend->allocate(static_cast<size_t>(total) * es);
  constexpr int threads = 256;
  if (es == 4)
    reorder_weight_kernel<uint32_t><<<grid_for(total, threads), threads, 0, s>>>(
        static_cast<const uint32_t*>(a.weight), static_cast<uint32_t*>(wbuf->ptr), total, a.cin, taps);
  else
    reorder_weight_kernel<uint16_t><<<grid_for(total, threads), threads, 0, s>>>(
        static_cast<const uint16_t*>(a.weight), static_cast<uint16_t*>(wbuf->ptr), total, a.cin, taps);
  TESSERA_CUDA_CHECK_LAUNCH(name);
  return wbuf;
}

void conv3d_gemm(const Conv3dArgs& a, const ExecCtx& ctx, const char* name) {
  if (a.batch <= 0 || a.out_frames <= 0 || a.out_height <= 0 || a.out_width <= 0 || a.cout <= 0) return;
  if (a.kt <= 0 || a.kh <= 0 || a.kw <= 0 || a.stride_t <= 0 || a.stride_h <= 0 || a.stride_w <= 0)
    throw DeviceError(std::string("CUDA kernel '") + name + "': kernel size and strides must be positive");
  const int64_t Fo = (a.pad_t_front + a.frames + a.pad_t_back - a.kt) / a.stride_t + 1;
  const int64_t Ho = (2 * a.pad_h + a.height - a.kh) / a.stride_h + 1;
  const int64_t Wo = (2 * a.pad_w + a.width - a.kw) / a.stride_w + 1;
  if (Fo != a.out_frames || Ho != a.out_height || Wo != a.out_width)
    throw DeviceError(std::string("CUDA kernel '") + name + "': output size does not match the geometry");
  const int64_t P = (a.prev && a.prev_frames > 0) ? a.prev_frames : 0;
  if (P > a.pad_t_front)
    throw DeviceError(std::string("CUDA kernel '") + name + "': prev_frames exceeds the front time padding");
  const int64_t taps = a.kt * a.kh * a.kw;
  const int64_t K = taps * a.cin;
  for (auto [what, v] : {std::pair<const char*, int64_t>{"frames", a.frames}, {"height", a.height},
                         {"width", a.width}, {"cin", a.cin}, {"cout", a.cout}, {"K", K}, {"prev_frames", P},
                         {"padding", a.pad_t_front + a.pad_t_back + 2 * a.pad_h + 2 * a.pad_w},
                         {"out_frames", Fo * a.stride_t}, {"out_height", Ho * a.stride_h},
                         {"out_width", Wo * a.stride_w}, {"batch", a.batch}})
    check_int(name, what, v);
  if (!dtype_is_float(a.dtype))
    throw DeviceError(std::string("CUDA kernel '") + name + "' got non-float dtype " + dtype_name(a.dtype));
  // Few output channels go to the direct kernel (conv3d_narrow.cu). On sm_90a devices the wgmma
  // kernel (conv3d_wgmma.cu) takes the cases it covers, then the mma.sync implicit-GEMM kernel
  // (conv3d_igemm.cu: 2.1-2.8x the wmma kernel below on the H100,
  // docs/performance.md, Convolutions); the wmma / SIMT kernels below take the rest.
  const CudaKernelChoice& choice = kernel_choice(ctx);
  ConvPlan plan;
  plan.tile_n = choice.conv_tile_n;
  plan.pipeline = choice.conv_pipeline;
  plan.ws_tma_weight = choice.conv_ws_tma;
  plan.trace = choice.conv_trace;
  if (conv3d_narrow(a, P, plan, ctx, name)) return;
  if (!choice.conv_no_wgmma && conv3d_wgmma(a, P, plan, ctx, name)) return;
  if (conv3d_igemm(a, P, plan, ctx, name)) return;
  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream);

  // Weight in k order (taps outer, channels inner); a 1-tap kernel already is.
  std::shared_ptr<Storage> wbuf = weight_nk(a, ctx, name);
  const void* w = wbuf ? wbuf->ptr : a.weight;

  Geom g;
  g.x = a.x;
  g.prev = P > 0 ? a.prev : nullptr;
  g.w = w;
  g.bias = a.bias;
  g.out = a.out;
  g.F = static_cast<int>(a.frames);
  g.H = static_cast<int>(a.height);
  g.W = static_cast<int>(a.width);
  g.Cin = static_cast<int>(a.cin);
  g.P = static_cast<int>(P);
  g.kh = static_cast<int>(a.kh);
  g.kw = static_cast<int>(a.kw);
  g.khw = static_cast<int>(a.kh * a.kw);
  g.st = static_cast<int>(a.stride_t);
  g.sh = static_cast<int>(a.stride_h);
  g.sw = static_cast<int>(a.stride_w);
  g.pad_front = static_cast<int>(a.pad_t_front);
  g.pad_h = static_cast<int>(a.pad_h);
  g.pad_w = static_cast<int>(a.pad_w);
  g.Fo = static_cast<int>(Fo);
  g.Ho = static_cast<int>(Ho);
  g.Wo = static_cast<int>(Wo);
  g.M = a.batch * Fo * Ho * Wo;
  g.N = static_cast<int>(a.cout);
  g.K = static_cast<int>(K);
  g.out_vec = g.N % 8 == 0 && aligned_to(a.out, 16);

  const bool aligned = aligned_to(a.x, 16) && (!g.prev || aligned_to(g.prev, 16)) && aligned_to(w, 16);
  if (a.dtype == DType::F32) {
    const int64_t tiles_n = (g.N + SBN - 1) / SBN;
    const int64_t tiles = (g.M + SBM - 1) / SBM * tiles_n;
    if (tiles > INT_MAX) throw DeviceError(std::string("CUDA kernel '") + name + "': output too large");
    if (aligned && g.Cin % 4 == 0)
      conv_simt_kernel<true><<<static_cast<unsigned>(tiles), STHREADS, 0, s>>>(g, tiles_n);
    else
      conv_simt_kernel<false><<<static_cast<unsigned>(tiles), STHREADS, 0, s>>>(g, tiles_n);
  } else {
    const bool vec = aligned && g.Cin % 8 == 0;
    if (a.dtype == DType::BF16) launch_wmma<__nv_bfloat16>(g, vec, s, name);
    else launch_wmma<__half>(g, vec, s, name);
  }
  TESSERA_CUDA_CHECK_LAUNCH(name);
  // wbuf goes back to the caching allocator here; the kernels above run before any
  // later user of the block on this single stream.
}

namespace {
void conv3d_cuda(const Conv3dArgs& a, const ExecCtx& ctx) { conv3d_gemm(a, ctx, "conv3d"); }
}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "conv3d", Conv3dArgs, conv3d_cuda);

}  // namespace tessera
