// conv3d with few output channels (Cout <= 8: the Wan-VAE decoder's RGB head, 96 -> 3), bf16 /
// f16, stride 1: a direct tensor-core kernel that reads each input voxel from global memory about
// once instead of once per tap.
//
// Why: the implicit-GEMM kernels see this conv as M = voxels, N = 3, K = 27 * Cin. With N = 3
// their 64-wide tile is 95% padding and, worse, they gather A (27 copies of the input) from L2
// for the little math there is: the head ran at 0.58x cuDNN (docs/performance.md, Convolutions).
//
// Block: 256 threads = 8 warps on an output tile of 8 rows x 32 columns of one output frame.
// For each input frame tap `it` and each block of 32 input channels, the block stages the input
// halo ((8 + kh - 1) x (32 + kw - 1) voxels x 32 channels) in shared memory with cp.async
// (two buffers: the next stage loads while this one is used; zeros outside the image), then each
// warp multiplies its row's 32 voxels (two m16 tiles) by the weight with mma.sync m16n8k16:
// the A fragment of tap (ih, iw) is an ldmatrix over the halo voxels shifted by (ih, iw), so
// im2col exists only as addresses. The weight is pre-arranged once per call in mma B-fragment
// order ([tap][Cin / 16][lane] of two 32-bit registers, output channels past Cout zero) and kept
// in shared memory for the block's whole tile. Output: fp32 accumulators + bias, scalar stores.
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda/common/dtype.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/gemm/mma.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "conv_gemm.h"
#include "conv_igemm_host.h"

namespace tessera {
namespace {

constexpr int kTH = 8, kTW = 32;       // output tile: rows x columns (one warp per row)
constexpr int kThreads = kTH * 32;
constexpr int kCC = 32;                // input channels per stage
constexpr int kPixStride = kCC + 8;    // elements per halo voxel in shared memory: ldmatrix conflict-free
constexpr int kMaxK = 3;               // kh, kw
constexpr int kHaloH = kTH + kMaxK - 1, kHaloW = kTW + kMaxK - 1;
constexpr int kStageElems = kHaloH * kHaloW * kPixStride;
constexpr int kMaxWeightBytes = 64 * 1024;  // taps * Cin / 16 fragments of 256 bytes

// B fragments of mma.m16n8k16 (B is k x n, "col" layout): lane l holds b0 = B[2(l%4) + {0,1}][l/4]
// and b1 = B[2(l%4) + 8 + {0,1}][l/4], with B[k][n] = w[n][16 s + k][tap].
template <class T>
__global__ void narrow_weight_kernel(const T* __restrict__ w, uint2* __restrict__ wf, int cin, int cout, int taps) {
  const int slices = cin / 16;
  const int total = taps * slices * 32;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int lane = i & 31, s = (i >> 5) % slices, tap = (i >> 5) / slices;
    const int n = lane >> 2, k0 = 16 * s + 2 * (lane & 3);
    auto at = [&](int ci) {
      return n < cout ? Elem<T>::load(w, (static_cast<int64_t>(n) * cin + ci) * taps + tap) : 0.f;
    };
    wf[i] = make_uint2(tc::pack2<T>(at(k0), at(k0 + 1)), tc::pack2<T>(at(k0 + 8), at(k0 + 9)));
  }
}

template <class T>
// p: igemm's Params (make_params) with w = the B fragments, N = Cout.
__global__ void __launch_bounds__(kThreads, 2) conv_narrow_kernel(const igemm::Params p) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int taps = p.kt * p.kh * p.kw, slices = p.Cin / 16;
  uint2* wf_s = reinterpret_cast<uint2*>(smem);
  const uint2* wf = static_cast<const uint2*>(p.w);
  const int tiles_h = (p.Ho + kTH - 1) / kTH, tiles_w = (p.Wo + kTW - 1) / kTW;
  T* halo = reinterpret_cast<T*>(smem + taps * slices * 32 * sizeof(uint2));  // two stages

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  // Output frames fastest: the blocks of one spatial tile run together and share its input
  // frames in L2 (each frame feeds kt output frames).
  int tile = blockIdx.x;
  const int fo = tile % p.Fo;
  tile /= p.Fo;
  const int tw = tile % tiles_w;
  tile /= tiles_w;
  const int th = tile % tiles_h, b = tile / tiles_h;
  const int ho0 = th * kTH, wo0 = tw * kTW;
  const int hh = kTH + p.kh - 1, hw = kTW + p.kw - 1;  // this call's halo

  // The weight fragments: one cp.async group of their own, waited for with the first stage.
  {
    const int n16 = taps * slices * 32 * static_cast<int>(sizeof(uint2)) / 16;
    for (int i = tid; i < n16; i += kThreads)
      tc::cp_async16(reinterpret_cast<unsigned char*>(wf_s) + 16 * i, reinterpret_cast<const unsigned char*>(wf) + 16 * i,
                     16);
  }

  // Stages: (input frame tap it, channel block cb) for the frames that exist (x or prev).
  const int cblocks = p.Cin / kCC;
  const int f_base = fo - p.pad_front;
  int it_lo = 0, it_hi = p.kt;  // [it_lo, it_hi): frames in [-P, F)
  while (it_lo < p.kt && f_base + it_lo < -p.P) ++it_lo;
  while (it_hi > it_lo && f_base + it_hi - 1 >= p.F) --it_hi;
  const int stages = (it_hi - it_lo) * cblocks;
  const T* xp = static_cast<const T*>(p.x);
  const T* pp = static_cast<const T*>(p.prev);

  auto load_stage = [&](int st, int buf) {
    const int it = it_lo + st / cblocks, cb = st % cblocks;
    const int f = f_base + it;
    const T* src_frame = f >= 0 ? xp + ((static_cast<int64_t>(b) * p.F + f) * p.H) * p.W * p.Cin
                                : pp + ((static_cast<int64_t>(b) * p.P + f + p.P) * p.H) * p.W * p.Cin;
    T* dst = halo + buf * kStageElems;
    const int chunks = hh * hw * (kCC / 8);
    for (int c = tid; c < chunks; c += kThreads) {
      const int q = c & 3, pix = c >> 2;  // 16-byte chunk q of halo voxel pix
      const int hy = pix / hw, hx = pix - hy * hw;
      const int h = ho0 - p.pad_h + hy, w = wo0 - p.pad_w + hx;
      const bool ok = static_cast<unsigned>(h) < static_cast<unsigned>(p.H) &&
                      static_cast<unsigned>(w) < static_cast<unsigned>(p.W);
      const T* src = ok ? src_frame + (static_cast<int64_t>(h) * p.W + w) * p.Cin + cb * kCC + q * 8 : xp;
      tc::cp_async16(dst + (hy * kHaloW + hx) * kPixStride + q * 8, src, ok ? 16 : 0);
    }
  };

  float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
  if (stages > 0) load_stage(0, 0);
  tc::cp_async_commit();  // group 0: the weights and stage 0
  // ldmatrix.x4 row of this lane: voxel (lane % 8) + 8 * ((lane / 8) % 2) of a 16-voxel m tile,
  // k offset 8 * (lane / 16) within the 16-channel slice.
  const int lrow = (lane & 7) + 8 * ((lane >> 3) & 1), lk = 8 * (lane >> 4);
  for (int st = 0; st < stages; ++st) {
    if (st + 1 < stages) load_stage(st + 1, (st + 1) & 1);
    tc::cp_async_commit();
    tc::cp_async_wait<1>();  // stage st (and the weights) landed for this thread
    __syncthreads();         // ... and for every thread
    const int it = it_lo + st / cblocks, cb = st % cblocks;
    const T* buf = halo + (st & 1) * kStageElems;
    for (int ih = 0; ih < p.kh; ++ih)
      for (int iw = 0; iw < p.kw; ++iw) {
        const int tap = (it * p.kh + ih) * p.kw + iw;
        const T* row = buf + ((warp + ih) * kHaloW + iw + lrow) * kPixStride + lk;
#pragma unroll
        for (int s2 = 0; s2 < kCC / 16; ++s2) {
          const uint2 bf = wf_s[(tap * slices + cb * (kCC / 16) + s2) * 32 + lane];
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            uint32_t a[4];
            tc::ldmatrix_x4(a, row + mt * 16 * kPixStride + s2 * 16);
            tc::mma16816<T>(acc[mt], a, bf.x, bf.y);
          }
        }
      }
    __syncthreads();  // every warp is done with this buffer before it is refilled
  }
  tc::cp_async_wait<0>();

  // acc[mt][e]: voxel 16 mt + lane / 4 + 8 (e / 2) of this warp's row, channel 2 (lane % 4) + e % 2.
  const int ho = ho0 + warp;
  if (ho >= p.Ho) return;
  const T* bias = static_cast<const T*>(p.bias);
  T* out = static_cast<T*>(p.out);
  const int64_t row_base = ((static_cast<int64_t>(b) * p.Fo + fo) * p.Ho + ho) * p.Wo;
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int wo = wo0 + 16 * mt + (lane >> 2) + 8 * (e >> 1);
      const int n = 2 * (lane & 3) + (e & 1);
      if (wo < p.Wo && n < p.N)
        Elem<T>::store(out, (row_base + wo) * p.N + n, acc[mt][e] + (bias ? Elem<T>::load(bias, n) : 0.f));
    }
}

}  // namespace

bool conv3d_narrow(const Conv3dArgs& a, int64_t prev_frames, const ConvPlan& plan, const ExecCtx& ctx,
                   const char* name) {
  const bool trace = plan.trace;
  auto refuse = [&](const char* why) {
    if (trace) std::fprintf(stderr, "[tessera conv] %s: narrow not taken (%s)\n", name, why);
    return false;
  };
  if (a.dtype != DType::BF16 && a.dtype != DType::F16) return refuse("dtype is not bf16/f16");
  if (a.cout > 8) return refuse("Cout > 8");
  if (a.stride_t != 1 || a.stride_h != 1 || a.stride_w != 1) return refuse("stride is not 1");
  if (a.cin % kCC != 0) return refuse("Cin % 32 != 0");
  if (a.kh > kMaxK || a.kw > kMaxK) return refuse("kh or kw > 3");
  const int64_t taps = a.kt * a.kh * a.kw;
  const int64_t wbytes = taps * (a.cin / 16) * 32 * 8;
  if (wbytes > kMaxWeightBytes) return refuse("weight fragments over 64 KB");
  if (!aligned_to(a.x, 16) || (prev_frames > 0 && !aligned_to(a.prev, 16))) return refuse("x / prev not 16-byte aligned");
  const int64_t tiles_h = (a.out_height + kTH - 1) / kTH, tiles_w = (a.out_width + kTW - 1) / kTW;
  const int64_t blocks = a.batch * a.out_frames * tiles_h * tiles_w;
  const int64_t voxels = a.batch * (a.frames + prev_frames) * a.height * a.width * a.cin;
  if (blocks > INT_MAX || voxels > INT64_MAX / 4 || a.height * a.width * a.cin > INT_MAX)
    return refuse("sizes past the kernel's index arithmetic");

  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream);
  std::shared_ptr<Storage> wf = ctx.backend->allocate(static_cast<size_t>(wbytes));
  const int nfrag = static_cast<int>(taps * (a.cin / 16) * 32);
  if (a.dtype == DType::BF16)
    narrow_weight_kernel<__nv_bfloat16><<<(nfrag + 255) / 256, 256, 0, s>>>(
        static_cast<const __nv_bfloat16*>(a.weight), static_cast<uint2*>(wf->ptr), static_cast<int>(a.cin),
        static_cast<int>(a.cout), static_cast<int>(taps));
  else
    narrow_weight_kernel<__half><<<(nfrag + 255) / 256, 256, 0, s>>>(static_cast<const __half*>(a.weight),
                                                                      static_cast<uint2*>(wf->ptr), static_cast<int>(a.cin),
                                                                      static_cast<int>(a.cout), static_cast<int>(taps));
  TESSERA_CUDA_CHECK_LAUNCH(name);

  const igemm::Params p = igemm::make_params(a, prev_frames, wf->ptr, a.cout);
  const int smem = static_cast<int>(wbytes) + 2 * kStageElems * 2;
  if (trace)
    std::fprintf(stderr, "[tessera conv] %s: narrow %lld blocks Cin=%lld Cout=%lld taps=%lld\n", name,
                 static_cast<long long>(blocks), static_cast<long long>(a.cin), static_cast<long long>(a.cout),
                 static_cast<long long>(taps));
  auto go = [&](auto kern) {
    TESSERA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    kern<<<static_cast<unsigned>(blocks), kThreads, smem, s>>>(p);
  };
  if (a.dtype == DType::BF16) go(conv_narrow_kernel<__nv_bfloat16>);
  else go(conv_narrow_kernel<__half>);
  TESSERA_CUDA_CHECK_LAUNCH(name);
  // wf returns to the caching allocator here; the kernel above runs before any later user of the
  // block on this single stream.
  return true;
}

}  // namespace tessera
