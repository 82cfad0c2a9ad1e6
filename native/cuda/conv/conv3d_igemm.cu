// The mma.sync implicit-GEMM conv3d for bf16 / f16 (conv_gemm.h: conv3d_igemm).
//
// The default for the cases it covers where the wgmma kernels do not run: on the H100 it passed the conformance suite with every block tile,
// compute-sanitizer memcheck and racecheck (scripts/gpu/kernel-bench.sh conv, check.sh). Design,
// register and shared-memory budget, measured speed: NOTES.md beside this file.
//
// GEMM view: out[m, n] = bias[n] + sum_k A[m, k] * Wt[k, n], with
//   m = ((b * Fo + fo) * Ho + ho) * Wo + wo   (output voxels, channels-last order)
//   n = output channel
//   k = ((it * kh + ih) * kw + iw) * Cin + ci (taps outer, input channel fastest)
// A is never materialised: each 16-byte chunk (8 channels of one tap of one output voxel) is
// copied by cp.async from x, or from `prev` for the frames before x, or zero-filled for
// padding. Wt is the weight reordered once per call to [K][Np] (Np = Cout rounded up to 8,
// zero columns past Cout) by a tiled transpose.
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda/common/dtype.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/gemm/mma.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "conv_gemm.h"
#include "conv_igemm.cuh"
#include "conv_igemm_host.h"

namespace tessera {
namespace {

using namespace igemm;
using IgParams = igemm::Params;

// BM x BN block tile, WM x WN warps (warp tile (BM / WM) x (BN / WN)), kStages-deep
// cp.async pipeline over BK = 32, mma.sync m16n8k16 with fp32 accumulators, ldmatrix
// (A row-major from [BM][BK + 8], B with .trans from [BK][BN + 8]), bias fused into the
// epilogue, which stages the tile in shared memory for 16-byte stores where N % 8 == 0.
template <class T, int BM, int BN, int WM, int WN, int MINB>
__global__ void __launch_bounds__(WM* WN * 32, MINB) conv_igemm_kernel(const IgParams p) {
  using S = Tile<BM, BN, WM, WN>;
  constexpr int MT = S::MT, NT = S::NT;
  constexpr int LDA = S::LDA, LDB = S::LDB, A_ELEMS = S::A_ELEMS, B_ELEMS = S::B_ELEMS;
  constexpr int A_CH = S::A_CH, A_RSTEP = S::A_RSTEP, A_IT = S::A_IT;
  constexpr int B_CH = S::B_CH, B_TOTAL = S::B_TOTAL, B_IT = S::B_IT;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* As = reinterpret_cast<T*>(smem_raw);
  T* Bs = As + kStages * A_ELEMS;

  const int tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  const int wm = warp % WM, wn = warp / WM;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x / p.tiles_n) * BM;
  const int n0 = static_cast<int>(blockIdx.x % p.tiles_n) * BN;
  const T* xp = static_cast<const T*>(p.x);
  const T* pp = static_cast<const T*>(p.prev);
  const T* wp = static_cast<const T*>(p.w);

  // ---- A rows of this thread (conv_igemm.cuh): offsets in x / prev, first frame, tap mask.
  const int a_kc = tid % A_CH, a_r0 = tid / A_CH;
  Row rows[A_IT];
#pragma unroll
  for (int i = 0; i < A_IT; ++i) rows[i] = make_row(p, m0 + a_r0 + i * A_RSTEP);
  TapCursor cur{0, 0, 0, 0, 0, 0};
  cur.advance(p, a_kc * 8);

  auto load_stage = [&](int stage, int k0) {
    T* as = As + stage * A_ELEMS;
    T* bs = Bs + stage * B_ELEMS;
#pragma unroll
    for (int i = 0; i < A_IT; ++i) {
      bool from_prev = false;
      int64_t off = 0;
      const bool ok = chunk_source(p, rows[i], cur, &from_prev, &off);
      tc::cp_async16(as + (a_r0 + i * A_RSTEP) * LDA + a_kc * 8, ok ? (from_prev ? pp : xp) + off : xp, ok ? 16 : 0);
    }
    cur.advance(p, kBK);
#pragma unroll
    for (int j = 0; j < B_IT; ++j) {
      const int c = tid + j * S::NTH;
      if (B_TOTAL % S::NTH != 0 && c >= B_TOTAL) break;
      const int r = c / B_CH, cc = c % B_CH;
      const int n = n0 + cc * 8;
      const bool ok = n < p.Np && k0 + r < p.K;
      tc::cp_async16(bs + r * LDB + cc * 8, ok ? wp + static_cast<int64_t>(k0 + r) * p.Np + n : wp, ok ? 16 : 0);
    }
  };

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  const int KT = (p.K + kBK - 1) / kBK;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < KT) load_stage(s, s * kBK);
    tc::cp_async_commit();
  }

  int read_stage = 0, write_stage = kStages - 1;
#pragma unroll 1
  for (int kt = 0; kt < KT; ++kt) {
    tc::cp_async_wait<kStages - 2>();
    __syncthreads();  // stage kt has landed for every thread; stage kt - 1 is free
    if (kt + kStages - 1 < KT) load_stage(write_stage, (kt + kStages - 1) * kBK);
    tc::cp_async_commit();
    write_stage = write_stage == kStages - 1 ? 0 : write_stage + 1;
    const T* as = As + read_stage * A_ELEMS;
    const T* bs = Bs + read_stage * B_ELEMS;
    read_stage = read_stage == kStages - 1 ? 0 : read_stage + 1;
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t af[MT][4];
      uint32_t bf[NT][2];
#pragma unroll
      for (int i = 0; i < MT; ++i) tc::ldmatrix_x4(af[i], as + S::a_frag(wm, i, kk, lane));
#pragma unroll
      for (int j = 0; j < NT; j += 2) {
        uint32_t r[4];
        tc::ldmatrix_x4_trans(r, bs + S::b_frag(wn, j, kk, lane));
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

  const T* bias = static_cast<const T*>(p.bias);
  T* out = static_cast<T*>(p.out);
  if (p.vec_out) {
    // ---- staged epilogue: + bias in fp32, rounded once into a [BM][BN + 8] tile in the
    // pipeline's shared memory, then written out in 16-byte chunks along rows, so each warp
    // store covers whole 128-byte lines (the fragment layout alone gives 4-byte pieces of
    // 8 rows). Output-bound convs (the patch embedding: K = 64, N = 1536) depend on it.
    constexpr int LDC = BN + kPad;
    static_assert(BM * LDC * 2 <= S::SMEM, "C tile fits the pipeline's shared memory");
    T* Cs = reinterpret_cast<T*>(smem_raw);
    __syncthreads();  // every warp has finished reading As / Bs
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const int cl = S::c_col(wn, j, lane);
      const int col = n0 + cl;
      const float b0 = bias && col < p.N ? Elem<T>::load(bias, col) : 0.f;
      const float b1 = bias && col + 1 < p.N ? Elem<T>::load(bias, col + 1) : 0.f;
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          *reinterpret_cast<uint32_t*>(Cs + S::c_row(wm, i, h, lane) * LDC + cl) =
              tc::pack2<T>(acc[i][j][2 * h] + b0, acc[i][j][2 * h + 1] + b1);
    }
    __syncthreads();
    constexpr int CH = BN / 8;
#pragma unroll 4
    for (int c = tid; c < BM * CH; c += S::NTH) {
      const int r = c / CH, cc = c - r * CH;
      const int64_t row = m0 + r;
      const int col = n0 + cc * 8;
      if (row < p.M && col < p.N)
        *reinterpret_cast<uint4*>(out + row * p.N + col) = *reinterpret_cast<const uint4*>(Cs + r * LDC + cc * 8);
    }
    return;
  }

  // ---- direct epilogue (N % 8 != 0 or a misaligned out): + bias in fp32, rounded once,
  // two channels per 32-bit store where N is even.
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    const int col = n0 + S::c_col(wn, j, lane);
    if (col >= p.N) continue;
    const bool two = col + 1 < p.N;
    float b0 = 0.f, b1 = 0.f;
    if (bias) {
      b0 = Elem<T>::load(bias, col);
      if (two) b1 = Elem<T>::load(bias, col + 1);
    }
#pragma unroll
    for (int i = 0; i < MT; ++i) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = m0 + S::c_row(wm, i, h, lane);
        if (row >= p.M) continue;
        const float v0 = acc[i][j][2 * h] + b0, v1 = acc[i][j][2 * h + 1] + b1;
        T* dst = out + row * p.N + col;
        if (p.pair_out && two) {
          *reinterpret_cast<uint32_t*>(dst) = tc::pack2<T>(v0, v1);
        } else {
          Elem<T>::store(dst, 0, v0);
          if (two) Elem<T>::store(dst, 1, v1);
        }
      }
    }
  }
}

// ---- weight reorder: [N][Cin][taps] (PyTorch) -> [K][Np], k = tap * Cin + ci, zero columns
// n in [N, Np). 32 x 32 tiles of (n, j = ci * taps + tap) through shared memory: reads run
// along j, writes along n, both coalesced.
__global__ void reorder_kn_kernel(const uint16_t* __restrict__ w, uint16_t* __restrict__ wt, int N, int Np, int cin,
                                  int taps) {
  __shared__ uint16_t tile[32][33];
  const int J = cin * taps;
  const int j0 = blockIdx.x * 32, n0 = blockIdx.y * 32;
  const int tx = threadIdx.x, ty = threadIdx.y;  // 32 x 8
  for (int r = ty; r < 32; r += 8) {
    const int n = n0 + r, j = j0 + tx;
    tile[r][tx] = (n < N && j < J) ? w[static_cast<int64_t>(n) * J + j] : uint16_t{0};
  }
  __syncthreads();
  for (int r = ty; r < 32; r += 8) {
    const int j = j0 + r, n = n0 + tx;
    if (j >= J || n >= Np) continue;
    wt[wt_index(n, j, cin, taps, Np)] = tile[tx][r];
  }
}


template <class T, int BM, int BN, int WM, int WN, int MINB>
void launch_igemm(IgParams p, cudaStream_t s, const char* name) {
  auto kern = conv_igemm_kernel<T, BM, BN, WM, WN, MINB>;
  constexpr int smem = Tile<BM, BN, WM, WN>::SMEM;
  p.tiles_n = (p.N + BN - 1) / BN;
  const int64_t tiles = (p.M + BM - 1) / BM * p.tiles_n;
  if (tiles > INT_MAX) throw DeviceError(std::string("CUDA kernel '") + name + "': output too large");
  TESSERA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  TESSERA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributePreferredSharedMemoryCarveout,
                                          static_cast<int>(cudaSharedmemCarveoutMaxShared)));
  kern<<<static_cast<unsigned>(tiles), WM * WN * 32, smem, s>>>(p);
  TESSERA_CUDA_CHECK_LAUNCH(name);
}

}  // namespace

namespace igemm {

const char* refusal(const Conv3dArgs& a, int64_t prev_frames, int bk, int64_t np) {
  if (a.dtype != DType::BF16 && a.dtype != DType::F16) return "dtype is not bf16/f16";
  if (a.cin % 8 != 0) return "Cin % 8 != 0";
  const int64_t taps = a.kt * a.kh * a.kw;
  if (taps > kMaxTaps) return "more than 32 taps";
  if (!aligned_to(a.x, 16) || (prev_frames > 0 && !aligned_to(a.prev, 16))) return "x / prev not 16-byte aligned";
  // 32-bit in-kernel tap offsets: d < kt * H * W * Cin (+ one k-step past the end).
  const int64_t K = taps * a.cin;
  const int64_t dmax = a.kt * a.height * a.width * a.cin + bk + a.cin;
  if (dmax > INT_MAX / 2 || K > INT_MAX / 2 || np > INT_MAX / 2 || K * np > INT64_MAX / 4) return "32-bit offsets";
  return nullptr;
}

Params make_params(const Conv3dArgs& a, int64_t prev_frames, const void* w, int64_t np) {
  Params p{};
  p.x = a.x;
  p.prev = prev_frames > 0 ? a.prev : a.x;  // never read when P = 0 (every frame < 0 is padding)
  p.w = w;
  p.bias = a.bias;
  p.out = a.out;
  p.M = a.batch * a.out_frames * a.out_height * a.out_width;
  p.N = static_cast<int>(a.cout);
  p.Np = static_cast<int>(np);
  p.K = static_cast<int>(a.kt * a.kh * a.kw * a.cin);
  p.F = static_cast<int>(a.frames);
  p.H = static_cast<int>(a.height);
  p.W = static_cast<int>(a.width);
  p.Cin = static_cast<int>(a.cin);
  p.P = static_cast<int>(prev_frames);
  p.kt = static_cast<int>(a.kt);
  p.kh = static_cast<int>(a.kh);
  p.kw = static_cast<int>(a.kw);
  p.taps = static_cast<int>(a.kt * a.kh * a.kw);
  p.st = static_cast<int>(a.stride_t);
  p.sh = static_cast<int>(a.stride_h);
  p.sw = static_cast<int>(a.stride_w);
  p.pad_front = static_cast<int>(a.pad_t_front);
  p.pad_h = static_cast<int>(a.pad_h);
  p.pad_w = static_cast<int>(a.pad_w);
  p.Fo = static_cast<int>(a.out_frames);
  p.Ho = static_cast<int>(a.out_height);
  p.Wo = static_cast<int>(a.out_width);
  p.dW = static_cast<int>((a.width - a.kw) * a.cin);
  p.dH = static_cast<int>((a.height - a.kh) * a.width * a.cin);
  p.pair_out = (a.cout % 2 == 0) && aligned_to(a.out, 4);
  p.vec_out = (a.cout % 8 == 0) && aligned_to(a.out, 16);
  return p;
}

int forced_tile(int bn, int forced, std::initializer_list<int> tiles) {
  for (int c : tiles)
    if (c == forced) return c;
  return bn;
}

void trace_launch(const char* name, const char* kernel, int bn, const Params& p) {
  std::fprintf(stderr, "[tessera conv] %s: %s 128x%d M=%lld N=%d K=%d taps=%d Cin=%d P=%d stride=%d,%d,%d\n", name,
               kernel, bn, static_cast<long long>(p.M), p.N, p.K, p.taps, p.Cin, p.P, p.st, p.sh, p.sw);
}

}  // namespace igemm

bool conv3d_igemm(const Conv3dArgs& a, int64_t prev_frames, const ConvPlan& plan, const ExecCtx& ctx,
                  const char* name) {
  const bool trace = plan.trace;
  const int64_t taps = a.kt * a.kh * a.kw;
  const int64_t K = taps * a.cin;
  const int64_t Np = (a.cout + 7) / 8 * 8;
  if (const char* why = refusal(a, prev_frames, kBK, Np)) {
    if (trace) std::fprintf(stderr, "[tessera conv] %s: igemm not taken (%s), older kernel\n", name, why);
    return false;
  }

  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream);
  // Weight -> [K][Np] (one transpose per call; see NOTES.md).
  auto wbuf = ctx.backend->allocate(static_cast<size_t>(K * Np) * 2);
  {
    const int J = static_cast<int>(K);
    dim3 grid(static_cast<unsigned>((J + 31) / 32), static_cast<unsigned>((Np + 31) / 32));
    reorder_kn_kernel<<<grid, dim3(32, 8), 0, s>>>(static_cast<const uint16_t*>(a.weight),
                                                    static_cast<uint16_t*>(wbuf->ptr), static_cast<int>(a.cout),
                                                    static_cast<int>(Np), static_cast<int>(a.cin),
                                                    static_cast<int>(taps));
    TESSERA_CUDA_CHECK_LAUNCH(name);
  }
  IgParams p = make_params(a, prev_frames, wbuf->ptr, Np);

  // Output-channel tile: the one of 128 / 96 / 64 that pads Cout least (ties: the wider);
  // 64 also when the wider tiles would give fewer blocks than two per SM (more, smaller
  // blocks for small M). The plan may force one (the conformance shapes alone never pick all
  // three).
  int bn = 128;
  for (int c : {96, 64})
    if ((p.N + c - 1) / c * c < (p.N + bn - 1) / bn * bn) bn = c;
  const int64_t tiles_m = (p.M + 127) / 128;
  if (bn > 64 && tiles_m * ((p.N + bn - 1) / bn) < 2 * static_cast<int64_t>(ctx.sms)) bn = 64;
  bn = forced_tile(bn, plan.tile_n, {128, 96, 64});
  if (trace) trace_launch(name, "igemm", bn, p);
  auto go = [&](auto tag) {
    using T = decltype(tag);
    // 128 x 128: 8 warps of 64 x 32, two blocks per SM; 128 x 96: 8 warps of 32 x 48, two per
    // SM; 128 x 64: 4 warps of 64 x 32, three per SM (NOTES.md: registers, shared memory).
    if (bn == 128) launch_igemm<T, 128, 128, 2, 4, 2>(p, s, name);
    else if (bn == 96) launch_igemm<T, 128, 96, 4, 2, 2>(p, s, name);
    else launch_igemm<T, 128, 64, 2, 2, 3>(p, s, name);
  };
  if (a.dtype == DType::BF16) go(__nv_bfloat16{});
  else go(__half{});
  // wbuf goes back to the caching allocator here; the kernels above run before any later
  // user of the block on this single stream.
  return true;
}

}  // namespace tessera
