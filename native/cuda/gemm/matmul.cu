// CUDA kernel "matmul": C[b] = act(alpha * op(A[b]) @ op(B[b]) + bias), row-major
// (semantics: tessera/kernels/gemm.h, reference: native/cpu/gemm/matmul.cc).
//
// Paths, in order of preference:
//   1. cuBLASLt (built with TESSERA_HAVE_CUBLASLT and ctx.blas set) for every case it
//      can express: epilogue none/gelu_tanh, optional bias, strided batches, and a
//      broadcast B when A is not transposed (the batch is folded into M then).
//      Plans (descriptors + heuristic choice) are cached per shape. The kernel choice
//      (runtime/kernel_choice.h) can skip cuBLASLt and trace the path each call takes.
//   2. bf16/f16: our tensor-core kernel (mma.sync m16n8k16, fp32 accumulation,
//      3-stage cp.async pipeline, any M/N/K, both transposes, any alignment).
//   3. f32: a SIMT tiled kernel with plain fp32 FMA (matches the 1e-4 reference tolerance).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cuda/common/dtype.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "cuda/runtime/kernel_choice.h"
#include "mma.cuh"
#include "tessera/kernels/gemm.h"

#ifdef TESSERA_HAVE_CUBLASLT
#include <cublasLt.h>

#include <cstring>
#include <map>
#include <mutex>
#endif

namespace tessera {
namespace {

struct GemmParams {
  const void* a;
  const void* b;
  const void* bias;
  void* c;
  int64_t m, n, k;
  int64_t lda, ldb;  // row stride of A / B as stored (A: k or m; B: n or k)
  int64_t stride_a, stride_b, stride_c;
  int64_t batch;
  int64_t tiles_m, tiles_n;
  float alpha;
  int epilogue;
  int vec_a, vec_b;  // 16-byte cp.async allowed (ld, base and batch stride multiples of 8 elements)
  int pair_c;        // 2-element stores allowed
};

__device__ __forceinline__ float apply_epilogue(float v, int epi) {
  if (epi == static_cast<int>(Epilogue::GeluTanh)) {
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    return 0.5f * v * (1.f + tanhf(k0 * (v + k1 * v * v * v)));
  }
  if (epi == static_cast<int>(Epilogue::Silu)) return v / (1.f + expf(-v));
  return v;
}

// Grouped tile order (8 M-tiles per group) so that neighbouring blocks share B tiles in L2.
__device__ __forceinline__ void tile_coords(int64_t tile, int64_t tiles_m, int64_t tiles_n, int64_t* tm,
                                            int64_t* tn) {
  const int64_t group = 8;
  const int64_t per_group = group * tiles_n;
  const int64_t first_m = (tile / per_group) * group;
  const int64_t gm = min(tiles_m - first_m, group);
  const int64_t in_group = tile % per_group;
  *tm = first_m + in_group % gm;
  *tn = in_group / gm;
}

// ---------------------------------------------------------------------------------
// Tensor-core kernel (bf16 / f16)
// ---------------------------------------------------------------------------------

constexpr int kBK = 32;
constexpr int kStages = 3;
constexpr int kPad = 8;  // elements of padding per shared row: keeps ldmatrix conflict-free

// Copies the R x C tile at (r0, c0) of a row-major matrix [nrows, ncols] (row stride ld)
// into shared memory with row stride C + kPad, zero-filling everything out of range.
template <class T, int R, int C, int NTH>
__device__ __forceinline__ void load_tile(T* s, const T* g, int64_t ld, int64_t nrows, int64_t ncols, int64_t r0,
                                          int64_t c0, bool vec, int tid) {
  constexpr int CH = C / 8;
  constexpr int TOTAL = R * CH;
  static_assert(C % 8 == 0, "tile width must be a multiple of 8");
  // Rows / columns of the tile that exist (<= 0 when the tile is past the edge).
  const int rows_left = static_cast<int>(min(nrows - r0, static_cast<int64_t>(R)));
  const int cols_left = static_cast<int>(min(ncols - c0, static_cast<int64_t>(C)));
  const uint16_t* base = reinterpret_cast<const uint16_t*>(g) + (r0 * ld + c0);
#pragma unroll
  for (int i = 0; i < (TOTAL + NTH - 1) / NTH; ++i) {
    const int idx = tid + i * NTH;
    if (TOTAL % NTH != 0 && idx >= TOTAL) break;
    const int r = idx / CH;
    const int cc = (idx % CH) * 8;
    T* dst = s + r * (C + kPad) + cc;
    if (r < rows_left && cc < cols_left) {
      const uint16_t* src = base + r * ld + cc;
      const int left = cols_left - cc;
      if (vec && left >= 8) {
        tc::cp_async16(dst, src, 16);
      } else {
        uint32_t w[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const uint32_t lo = (2 * e < left) ? src[2 * e] : 0u;
          const uint32_t hi = (2 * e + 1 < left) ? src[2 * e + 1] : 0u;
          w[e] = lo | (hi << 16);
        }
        *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
      }
    } else {
      *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
    }
  }
}

template <int BM, int BN, bool TA, bool TB>
struct TcShape {
  static constexpr int A_ELEMS = TA ? kBK * (BM + kPad) : BM * (kBK + kPad);
  static constexpr int B_ELEMS = TB ? BN * (kBK + kPad) : kBK * (BN + kPad);
  static constexpr size_t SMEM = static_cast<size_t>(kStages) * (A_ELEMS + B_ELEMS) * 2;
};

template <class T, int BM, int BN, int WM, int WN, bool TA, bool TB>
__global__ void __launch_bounds__(WM* WN * 32, 1) gemm_tc_kernel(GemmParams p) {
  constexpr int NTH = WM * WN * 32;
  constexpr int WTM = BM / WM, WTN = BN / WN;
  constexpr int MT = WTM / 16, NT = WTN / 8;
  static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tile");
  using S = TcShape<BM, BN, TA, TB>;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* As = reinterpret_cast<T*>(smem_raw);
  T* Bs = As + kStages * S::A_ELEMS;

  const int tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  const int wm = warp % WM, wn = warp / WM;
  const int g = lane >> 2, t4 = lane & 3;
  const int lq = lane >> 3, lr = lane & 7;

  int64_t tm, tn;
  tile_coords(blockIdx.x, p.tiles_m, p.tiles_n, &tm, &tn);
  const int64_t m0 = tm * BM, n0 = tn * BN;
  const int64_t M = p.m, N = p.n, K = p.k;
  const int64_t KT = (K + kBK - 1) / kBK;

#pragma unroll 1
  for (int64_t bz = blockIdx.z; bz < p.batch; bz += gridDim.z) {
    const T* A = static_cast<const T*>(p.a) + bz * p.stride_a;
    const T* B = static_cast<const T*>(p.b) + bz * p.stride_b;
    T* C = static_cast<T*>(p.c) + bz * p.stride_c;

    auto load_stage = [&](int stage, int64_t kt) {
      T* as = As + stage * S::A_ELEMS;
      T* bs = Bs + stage * S::B_ELEMS;
      const int64_t k0 = kt * kBK;
      if (TA) load_tile<T, kBK, BM, NTH>(as, A, p.lda, K, M, k0, m0, p.vec_a, tid);
      else load_tile<T, BM, kBK, NTH>(as, A, p.lda, M, K, m0, k0, p.vec_a, tid);
      if (TB) load_tile<T, BN, kBK, NTH>(bs, B, p.ldb, N, K, n0, k0, p.vec_b, tid);
      else load_tile<T, kBK, BN, NTH>(bs, B, p.ldb, K, N, k0, n0, p.vec_b, tid);
    };

    float acc[MT][NT][4];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < KT) load_stage(s, s);
      tc::cp_async_commit();
    }

    int read_stage = 0, write_stage = kStages - 1;
#pragma unroll 1
    for (int64_t kt = 0; kt < KT; ++kt) {
      tc::cp_async_wait<kStages - 2>();
      __syncthreads();
      if (kt + kStages - 1 < KT) load_stage(write_stage, kt + kStages - 1);
      tc::cp_async_commit();
      write_stage = write_stage == kStages - 1 ? 0 : write_stage + 1;
      const T* as = As + read_stage * S::A_ELEMS;
      const T* bs = Bs + read_stage * S::B_ELEMS;
      read_stage = read_stage == kStages - 1 ? 0 : read_stage + 1;
#pragma unroll
      for (int kk = 0; kk < kBK; kk += 16) {
        uint32_t af[MT][4];
        uint32_t bf[NT][2];
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          const int mrow = wm * WTM + i * 16;
          if (TA) {
            tc::ldmatrix_x4_trans(af[i], as + (kk + lr + (lq >> 1) * 8) * (BM + kPad) + mrow + (lq & 1) * 8);
          } else {
            tc::ldmatrix_x4(af[i], as + (mrow + (lane & 15)) * (kBK + kPad) + kk + (lane >> 4) * 8);
          }
        }
#pragma unroll
        for (int j = 0; j < NT; j += 2) {
          const int ncol = wn * WTN + j * 8;
          uint32_t r[4];
          if (TB) {
            tc::ldmatrix_x4(r, bs + (ncol + lr + (lq >> 1) * 8) * (kBK + kPad) + kk + (lq & 1) * 8);
          } else {
            tc::ldmatrix_x4_trans(r, bs + (kk + lr + (lq & 1) * 8) * (BN + kPad) + ncol + (lq >> 1) * 8);
          }
          bf[j][0] = r[0];
          bf[j][1] = r[1];
          bf[j + 1][0] = r[2];
          bf[j + 1][1] = r[3];
        }
#pragma unroll
        for (int i = 0; i < MT; ++i)
#pragma unroll
          for (int j = 0; j < NT; ++j) tc::mma16816<T>(acc[i][j], af[i], bf[j][0], bf[j][1]);
      }
    }
    tc::cp_async_wait<0>();
    __syncthreads();  // shared stages are reused by the next batch iteration

    const T* bias = static_cast<const T*>(p.bias);
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const int64_t col = n0 + wn * WTN + j * 8 + 2 * t4;
      float b0 = 0.f, b1 = 0.f;
      if (bias) {
        if (col < N) b0 = Elem<T>::load(bias, col);
        if (col + 1 < N) b1 = Elem<T>::load(bias, col + 1);
      }
#pragma unroll
      for (int i = 0; i < MT; ++i) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int64_t row = m0 + wm * WTM + i * 16 + g + h * 8;
          if (row >= M) continue;
          const float v0 = apply_epilogue(p.alpha * acc[i][j][2 * h] + b0, p.epilogue);
          const float v1 = apply_epilogue(p.alpha * acc[i][j][2 * h + 1] + b1, p.epilogue);
          T* dst = C + row * N + col;
          if (p.pair_c && col + 1 < N) {
            *reinterpret_cast<uint32_t*>(dst) = tc::pack2<T>(v0, v1);
          } else {
            if (col < N) Elem<T>::store(dst, 0, v0);
            if (col + 1 < N) Elem<T>::store(dst, 1, v1);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------
// fp32 SIMT kernel: 64x64 tile, 256 threads, 4x4 outputs each, plain FMA.
// ---------------------------------------------------------------------------------

template <bool TA, bool TB>
__global__ void __launch_bounds__(256, 1) gemm_f32_kernel(GemmParams p) {
  constexpr int BM = 64, BN = 64, BK = 16;
  __shared__ float As[BK][BM + 4];
  __shared__ float Bs[BK][BN + 4];
  const int tid = threadIdx.x;
  const int tx = tid & 15, ty = tid >> 4;
  int64_t tm, tn;
  tile_coords(blockIdx.x, p.tiles_m, p.tiles_n, &tm, &tn);
  const int64_t m0 = tm * BM, n0 = tn * BN;
  const int64_t M = p.m, N = p.n, K = p.k;

  for (int64_t bz = blockIdx.z; bz < p.batch; bz += gridDim.z) {
    const float* A = static_cast<const float*>(p.a) + bz * p.stride_a;
    const float* B = static_cast<const float*>(p.b) + bz * p.stride_b;
    float* C = static_cast<float*>(p.c) + bz * p.stride_c;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;

    for (int64_t k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int idx = tid + i * 256;
        int mm, kk;
        if (TA) { mm = idx & 63; kk = idx >> 6; }
        else { kk = idx & 15; mm = idx >> 4; }
        const int64_t gm = m0 + mm, gk = k0 + kk;
        float v = 0.f;
        if (gm < M && gk < K) v = TA ? A[gk * p.lda + gm] : A[gm * p.lda + gk];
        As[kk][mm] = v;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int idx = tid + i * 256;
        int nn, kk;
        if (TB) { kk = idx & 15; nn = idx >> 4; }
        else { nn = idx & 63; kk = idx >> 6; }
        const int64_t gn = n0 + nn, gk = k0 + kk;
        float v = 0.f;
        if (gn < N && gk < K) v = TB ? B[gn * p.ldb + gk] : B[gk * p.ldb + gn];
        Bs[kk][nn] = v;
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < BK; ++kk) {
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

    const float* bias = static_cast<const float*>(p.bias);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t col = n0 + tx + 16 * j;
      if (col >= N) continue;
      const float bv = bias ? bias[col] : 0.f;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int64_t row = m0 + ty + 16 * i;
        if (row < M) C[row * N + col] = apply_epilogue(p.alpha * acc[i][j] + bv, p.epilogue);
      }
    }
  }
}

// ---------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------


bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

GemmParams make_params(const MatmulArgs& a) {
  GemmParams p{};
  p.a = a.a;
  p.b = a.b;
  p.bias = a.bias;
  p.c = a.c;
  p.m = a.m;
  p.n = a.n;
  p.k = a.k;
  p.lda = a.trans_a ? a.m : a.k;
  p.ldb = a.trans_b ? a.k : a.n;
  p.stride_a = a.stride_a;
  p.stride_b = a.stride_b;
  p.stride_c = a.stride_c;
  p.batch = a.batch;
  p.alpha = a.alpha;
  p.epilogue = static_cast<int>(a.epilogue);
  const bool multi = a.batch > 1;
  p.vec_a = (p.lda % 8 == 0) && aligned16(a.a) && (!multi || a.stride_a % 8 == 0);
  p.vec_b = (p.ldb % 8 == 0) && aligned16(a.b) && (!multi || a.stride_b % 8 == 0);
  p.pair_c = (a.n % 2 == 0) && ((reinterpret_cast<uintptr_t>(a.c) & 3u) == 0) && (!multi || a.stride_c % 2 == 0);
  return p;
}

unsigned batch_grid(int64_t batch) { return static_cast<unsigned>(batch < 65535 ? batch : 65535); }

template <class T, int BM, int BN, int WM, int WN, bool TA, bool TB>
void launch_tc(GemmParams p, cudaStream_t stream) {
  using S = TcShape<BM, BN, TA, TB>;
  auto kern = gemm_tc_kernel<T, BM, BN, WM, WN, TA, TB>;
  p.tiles_m = (p.m + BM - 1) / BM;
  p.tiles_n = (p.n + BN - 1) / BN;
  const int64_t tiles = p.tiles_m * p.tiles_n;
  if (tiles > 0x7fffffffLL) throw DeviceError("matmul: problem too large for one launch (" + std::to_string(tiles) + " tiles)");
  if (S::SMEM > 48 * 1024)
    TESSERA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(S::SMEM)));
  dim3 grid(static_cast<unsigned>(tiles), 1, batch_grid(p.batch));
  kern<<<grid, WM * WN * 32, S::SMEM, stream>>>(p);
  TESSERA_CUDA_CHECK_LAUNCH("matmul (tensor-core kernel)");
}

template <class T, bool TA, bool TB>
void launch_tc_pick(GemmParams p, cudaStream_t stream, int sms) {
  const int64_t big_tiles = ((p.m + 127) / 128) * ((p.n + 127) / 128) * p.batch;
  if (big_tiles >= sms) launch_tc<T, 128, 128, 2, 4, TA, TB>(p, stream);
  else launch_tc<T, 64, 64, 2, 2, TA, TB>(p, stream);
}

template <class T>
void launch_tc_dtype(const GemmParams& p, bool ta, bool tb, cudaStream_t stream, int sms) {
  if (ta) {
    if (tb) launch_tc_pick<T, true, true>(p, stream, sms);
    else launch_tc_pick<T, true, false>(p, stream, sms);
  } else {
    if (tb) launch_tc_pick<T, false, true>(p, stream, sms);
    else launch_tc_pick<T, false, false>(p, stream, sms);
  }
}

template <bool TA, bool TB>
void launch_f32(GemmParams p, cudaStream_t stream) {
  p.tiles_m = (p.m + 63) / 64;
  p.tiles_n = (p.n + 63) / 64;
  const int64_t tiles = p.tiles_m * p.tiles_n;
  if (tiles > 0x7fffffffLL) throw DeviceError("matmul: problem too large for one launch");
  dim3 grid(static_cast<unsigned>(tiles), 1, batch_grid(p.batch));
  gemm_f32_kernel<TA, TB><<<grid, 256, 0, stream>>>(p);
  TESSERA_CUDA_CHECK_LAUNCH("matmul (f32 kernel)");
}

#ifdef TESSERA_HAVE_CUBLASLT
// Largest power of two (<= 256) dividing the address of every batch's matrix.
uint32_t alignment_of(const void* ptr, int64_t batch_stride_bytes, bool multi) {
  uint64_t v = reinterpret_cast<uintptr_t>(ptr) | 256u;
  if (multi) v |= static_cast<uint64_t>(batch_stride_bytes);
  return static_cast<uint32_t>(v & (~v + 1));  // lowest set bit
}

bool lt_ok(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }

// Descriptors plus the algorithm the heuristic picked, for one problem shape. Plans are
// cached (heuristic queries cost tens of microseconds); `usable` false caches a refusal.
struct LtPlan {
  bool usable = false;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  void destroy() {
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    op = nullptr;
    la = lb = lc = nullptr;
    usable = false;
  }
};

// All fields 64-bit: no padding, so memcmp orders keys.
struct LtKey {
  uint64_t handle;
  int64_t dtype, epilogue, has_bias, trans_a, trans_b;
  int64_t m, n, k, batch, sa, sb, sc;
  uint64_t al_a, al_b, al_c;
  uint64_t ws;
  bool operator<(const LtKey& o) const { return std::memcmp(this, &o, sizeof(LtKey)) < 0; }
};

struct LtCache {
  std::mutex mu;
  std::map<LtKey, LtPlan> plans;
};

LtCache& lt_cache() {
  static LtCache* c = new LtCache();  // never destroyed: outlives static teardown order
  return *c;
}

// Builds the plan for key `k` (dt, es: element type and size). Row-major C = op(A) op(B)
// is column-major C^T = op(B)^T op(A)^T, so cuBLASLt's "A" is our B and its "B" is our A,
// with m and n swapped; a row-major matrix is the column-major transpose of itself, so
// the transpose flags carry over unchanged.
LtPlan build_plan(cublasLtHandle_t h, const LtKey& k, cudaDataType_t dt) {
  LtPlan pl;
  auto fail = [&pl]() {
    pl.destroy();
    return pl;
  };
  if (!lt_ok(cublasLtMatmulDescCreate(&pl.op, CUBLAS_COMPUTE_32F, CUDA_R_32F))) return fail();
  const cublasOperation_t op_a = k.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt "A" = our B
  const cublasOperation_t op_b = k.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt "B" = our A
  cublasLtEpilogue_t epi;
  if (k.epilogue == static_cast<int>(Epilogue::GeluTanh))
    epi = k.has_bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
  else
    epi = k.has_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  if (!lt_ok(cublasLtMatmulDescSetAttribute(pl.op, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)))) return fail();
  if (!lt_ok(cublasLtMatmulDescSetAttribute(pl.op, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)))) return fail();
  if (!lt_ok(cublasLtMatmulDescSetAttribute(pl.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)))) return fail();

  // Stored shapes, column-major: our B is [n, k] (or [k, n] when trans_b), our A is
  // [k, m] (or [m, k] when trans_a), C^T is [n, m]; leading dimension = rows.
  const uint64_t rows_a = k.trans_b ? k.k : k.n, cols_a = k.trans_b ? k.n : k.k;
  const uint64_t rows_b = k.trans_a ? k.m : k.k, cols_b = k.trans_a ? k.k : k.m;
  if (!lt_ok(cublasLtMatrixLayoutCreate(&pl.la, dt, rows_a, cols_a, static_cast<int64_t>(rows_a)))) return fail();
  if (!lt_ok(cublasLtMatrixLayoutCreate(&pl.lb, dt, rows_b, cols_b, static_cast<int64_t>(rows_b)))) return fail();
  if (!lt_ok(cublasLtMatrixLayoutCreate(&pl.lc, dt, static_cast<uint64_t>(k.n), static_cast<uint64_t>(k.m), k.n)))
    return fail();
  if (k.batch > 1) {
    const int32_t bc = static_cast<int32_t>(k.batch);
    const int64_t offs[3] = {k.sb, k.sa, k.sc};
    cublasLtMatrixLayout_t ls[3] = {pl.la, pl.lb, pl.lc};
    for (int i = 0; i < 3; ++i) {
      if (!lt_ok(cublasLtMatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof(bc))))
        return fail();
      if (!lt_ok(cublasLtMatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &offs[i],
                                                  sizeof(offs[i]))))
        return fail();
    }
  }

  cublasLtMatmulPreference_t pref = nullptr;
  if (!lt_ok(cublasLtMatmulPreferenceCreate(&pref))) return fail();
  uint64_t ws = k.ws;
  bool ok = lt_ok(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const uint32_t al_a = static_cast<uint32_t>(k.al_a), al_b = static_cast<uint32_t>(k.al_b),
                 al_c = static_cast<uint32_t>(k.al_c);  // the attributes are uint32_t
  ok = ok && lt_ok(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a,
                                                        sizeof(al_a)));
  ok = ok && lt_ok(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b,
                                                        sizeof(al_b)));
  ok = ok && lt_ok(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c,
                                                        sizeof(al_c)));
  ok = ok && lt_ok(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c,
                                                        sizeof(al_c)));
  cublasLtMatmulHeuristicResult_t heur;
  std::memset(&heur, 0, sizeof(heur));
  int found = 0;
  ok = ok && lt_ok(cublasLtMatmulAlgoGetHeuristic(h, pl.op, pl.la, pl.lb, pl.lc, pl.lc, pref, 1, &heur, &found)) &&
       found >= 1 && lt_ok(heur.state) && heur.workspaceSize <= ws;
  cublasLtMatmulPreferenceDestroy(pref);
  if (!ok) return fail();
  pl.algo = heur.algo;
  pl.workspace = heur.workspaceSize;
  pl.usable = true;
  return pl;
}

// Runs the product through cuBLASLt; false (nothing launched) when it cannot.
bool try_cublaslt(const MatmulArgs& p, const ExecCtx& ctx) {
  if (!ctx.blas || !kernel_choice(ctx).cublaslt) return false;
  if (p.epilogue == Epilogue::Silu) return false;  // no SiLU epilogue in cuBLASLt
  if (p.k <= 0) return false;
  cudaDataType_t dt;
  int64_t es;
  switch (p.dtype) {
    case DType::F32: dt = CUDA_R_32F; es = 4; break;  // CUBLAS_COMPUTE_32F: true fp32, no TF32
    case DType::BF16: dt = CUDA_R_16BF; es = 2; break;
    case DType::F16: dt = CUDA_R_16F; es = 2; break;
    default: return false;
  }
  int64_t batch = p.batch, m = p.m;
  const int64_t n = p.n, k = p.k;
  const int64_t sa = p.stride_a, sb = p.stride_b, sc = p.stride_c;
  if (batch > 1 && sb == 0) {
    // Broadcast B: one GEMM over all rows of A when A's batches are consecutive rows.
    if (p.trans_a || sa != m * k || sc != m * n) return false;
    m *= batch;
    batch = 1;
  }
  if (batch > 1 && (sa == 0 || sc == 0)) return false;
  if (batch > 0x7fffffffLL) return false;
  if (p.bias && (reinterpret_cast<uintptr_t>(p.bias) & 15u) != 0) return false;

  LtKey key;
  std::memset(&key, 0, sizeof(key));
  key.handle = reinterpret_cast<uintptr_t>(ctx.blas);
  key.dtype = static_cast<int>(p.dtype);
  key.epilogue = static_cast<int>(p.epilogue);
  key.has_bias = p.bias != nullptr;
  key.trans_a = p.trans_a;
  key.trans_b = p.trans_b;
  key.m = m;
  key.n = n;
  key.k = k;
  key.batch = batch;
  key.sa = batch > 1 ? sa : 0;
  key.sb = batch > 1 ? sb : 0;
  key.sc = batch > 1 ? sc : 0;
  const bool multi = batch > 1;
  key.al_a = alignment_of(p.b, sb * es, multi);
  key.al_b = alignment_of(p.a, sa * es, multi);
  key.al_c = alignment_of(p.c, sc * es, multi);
  key.ws = ctx.workspace ? static_cast<uint64_t>(ctx.workspace_bytes) : 0;

  cublasLtHandle_t h = static_cast<cublasLtHandle_t>(ctx.blas);
  LtCache& cache = lt_cache();
  std::lock_guard<std::mutex> lock(cache.mu);
  auto it = cache.plans.find(key);
  if (it == cache.plans.end()) {
    if (cache.plans.size() >= 1024) {
      for (auto& kv : cache.plans) kv.second.destroy();
      cache.plans.clear();
    }
    it = cache.plans.emplace(key, build_plan(h, key, dt)).first;
  }
  LtPlan& pl = it->second;
  if (!pl.usable) return false;
  if (p.bias) {
    const void* bias_ptr = p.bias;
    if (!lt_ok(cublasLtMatmulDescSetAttribute(pl.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr, sizeof(bias_ptr))))
      return false;
  }
  const float alpha = p.alpha, beta = 0.f;
  const cublasStatus_t st =
      cublasLtMatmul(h, pl.op, &alpha, p.b, pl.la, p.a, pl.lb, &beta, p.c, pl.lc, p.c, pl.lc, &pl.algo,
                     pl.workspace ? ctx.workspace : nullptr, pl.workspace, static_cast<cudaStream_t>(ctx.stream));
  if (!lt_ok(st)) {
    cudaGetLastError();
    return false;
  }
  return true;
}
#endif  // TESSERA_HAVE_CUBLASLT

void trace(const MatmulArgs& a, const char* path) {
  std::fprintf(stderr, "[tessera matmul] %s batch=%lld m=%lld n=%lld k=%lld tA=%d tB=%d sb=%lld bias=%d epi=%d -> %s\n",
               dtype_name(a.dtype), static_cast<long long>(a.batch), static_cast<long long>(a.m),
               static_cast<long long>(a.n), static_cast<long long>(a.k), a.trans_a ? 1 : 0, a.trans_b ? 1 : 0,
               static_cast<long long>(a.stride_b), a.bias ? 1 : 0, static_cast<int>(a.epilogue), path);
}

void matmul_cuda(const MatmulArgs& a, const ExecCtx& ctx) {
  if (a.batch <= 0 || a.m <= 0 || a.n <= 0) return;
  const bool tracing = kernel_choice(ctx).gemm_trace;
#ifdef TESSERA_HAVE_CUBLASLT
  if (try_cublaslt(a, ctx)) {
    if (tracing) trace(a, "cublasLt");
    return;
  }
#endif
  if (tracing) trace(a, a.dtype == DType::F32 ? "own f32 kernel" : "own tensor-core kernel");
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  GemmParams p = make_params(a);
  switch (a.dtype) {
    case DType::BF16: launch_tc_dtype<__nv_bfloat16>(p, a.trans_a, a.trans_b, stream, ctx.sms); break;
    case DType::F16: launch_tc_dtype<__half>(p, a.trans_a, a.trans_b, stream, ctx.sms); break;
    case DType::F32:
      if (a.trans_a) {
        if (a.trans_b) launch_f32<true, true>(p, stream);
        else launch_f32<true, false>(p, stream);
      } else {
        if (a.trans_b) launch_f32<false, true>(p, stream);
        else launch_f32<false, false>(p, stream);
      }
      break;
    default: throw DeviceError(std::string("matmul: CUDA kernel got dtype ") + dtype_name(a.dtype));
  }
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "matmul", MatmulArgs, matmul_cuda);

}  // namespace tessera
