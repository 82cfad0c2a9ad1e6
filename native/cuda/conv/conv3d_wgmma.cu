// The Hopper implicit-GEMM conv3d for bf16 / f16 (conv_gemm.h: conv3d_wgmma): the GEMM view,
// the A gather and the k order of conv3d_igemm.cu (conv_igemm.cuh), with the product done by
// wgmma from shared memory instead of mma.sync from registers.
//
// Block: 256 threads = two warpgroups; a BM = 128 x BN output tile (BN = 192, 128, 96 or 64), each
// warpgroup owning 64 rows (wgmma m64nBNk16). Per k-step of BK = 64 every thread copies its
// 16-byte chunks of A (gathered from x / prev, zero for padding) and of B (the weight in
// [Cout][K] k order, zero past Cout / K) with cp.async into a ring of stages. Both tiles are
// K-major rows of 128 bytes in the 128-byte swizzle wgmma reads (16-byte chunk c of row r at
// c ^ (r % 8)), so one descriptor per operand and k-step of 16 covers them. After a stage has
// landed: fence.proxy.async (cp.async writes are generic-proxy, wgmma reads async-proxy),
// block barrier, then each warpgroup issues 4 wgmma; the wait for them (at once, or one
// k-step later) before a later barrier is what frees a stage for the copies. The epilogue stages the
// tile in shared memory and stores 16-byte chunks along rows (or single elements where
// Cout % 8 != 0), bias added in fp32.
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "cuda/common/dtype.cuh"
#include "cuda/common/sm90.cuh"
#include "cuda/common/sm90_probe.h"
#include "cuda/common/vec.cuh"
#include "cuda/common/wgmma_ops.cuh"
#include "cuda/gemm/mma.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "conv_gemm.h"
#include "conv_igemm.cuh"
#include "conv_igemm_host.h"
#include "conv_wgmma.cuh"
#include "conv_wgmma_ws.h"

namespace tessera {
namespace {

using namespace igemm;
using IgParams = igemm::Params;

using wgconv::swz;
constexpr int kWgBM = wgconv::kBM;
constexpr int kWgBK = wgconv::kBK;
constexpr int kWgThreads = 256;

// S stages in the ring; copies run D k-steps ahead (1 <= D < S), which leaves S - 1 - D
// stages for wgmma groups still in flight when the next barrier is reached.
template <int BN, int S, int D>
struct WgTile {
  static_assert(D >= 1 && D < S, "prefetch distance");
  static constexpr uint32_t A_BYTES = kWgBM * 128u, B_BYTES = BN * 128u, STAGE = A_BYTES + B_BYTES;
  static constexpr int LDC = BN + kPad;  // epilogue staging row, elements
  static constexpr size_t SMEM = S * STAGE + 1024;  // + slack to align the base to 1024
  static_assert(kWgBM * LDC * 2 <= S * STAGE, "C tile fits the ring");
};

template <class T, int BN, int S, int D, int MINB>
__global__ void __launch_bounds__(kWgThreads, MINB) conv_wgmma_kernel(const IgParams p) {
#if TESSERA_SM90A
  using L = WgTile<BN, S, D>;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw = sm90::smem_addr(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;
  unsigned char* gbase = smem_raw + (base - raw);  // the same bytes, generic address

  const int tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5, wg = tid >> 7;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x / p.tiles_n) * kWgBM;
  const int n0 = static_cast<int>(blockIdx.x % p.tiles_n) * BN;
  // A: this thread's chunk column (8 channels) of rows a_r0 + 32 i.
  constexpr int A_IT = kWgBM / (kWgThreads / 8);
  const int a_kc = tid & 7, a_r0 = tid >> 3;
  Row rows[A_IT];
#pragma unroll
  for (int i = 0; i < A_IT; ++i) rows[i] = make_row(p, m0 + a_r0 + i * (kWgThreads / 8));
  TapCursor cur{0, 0, 0, 0, 0, 0};
  cur.advance(p, a_kc * 8);

  auto load_stage = [&](int stage, int k0) {
    unsigned char* sa = gbase + stage * L::STAGE;
    wgconv::copy_a_chunks<T, A_IT, kWgThreads / 8>(sa, p, rows, cur, a_r0, a_kc);
    cur.advance(p, kWgBK);
    wgconv::copy_weight_tile<T, BN, kWgThreads>(sa + L::A_BYTES, p, n0, k0, tid);
  };


  float acc[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) acc[i] = 0.f;

  const int KT = (p.K + kWgBK - 1) / kWgBK;
#pragma unroll
  for (int s = 0; s < D; ++s) {
    if (s < KT) load_stage(s, s * kWgBK);
    tc::cp_async_commit();
  }
#pragma unroll 1
  for (int kt = 0; kt < KT; ++kt) {
    tc::cp_async_wait<D - 1>();
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    // Stage kt is in shared memory for the async proxy, and every warpgroup has waited for
    // its wgmma of step kt - 1 - W, the last reader of the stage the copies below refill.
    __syncthreads();
    if (kt + D < KT) load_stage((kt + D) % S, (kt + D) * kWgBK);
    tc::cp_async_commit();
    const uint32_t sa = base + (kt % S) * L::STAGE;
    const uint32_t a0 = sa + wg * (64u * 128u), b0 = sa + L::A_BYTES;
    sm90::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kWgBK / 16; ++kk)
      sm90::Wgmma<T, BN>::ss(acc, sm90::make_desc(a0 + kk * 32u, 16, 1024), sm90::make_desc(b0 + kk * 32u, 16, 1024),
                             1);
    sm90::wgmma_commit();
    // Groups left in flight: S - 1 - D. (No register fence here: it would count as a non-wgmma
    // definition of the accumulators and make ptxas serialise the wgmma.)
    sm90::wgmma_wait<S - 1 - D>();
  }
  sm90::wgmma_wait<0>();
  sm90::fence_regs(acc);
  tc::cp_async_wait<0>();
  __syncthreads();  // every warpgroup is done with the ring: it becomes the C tile

  // Accumulator j * 4 + e: row (warp % 4) * 16 + g + 8 * (e / 2) of this warpgroup's 64,
  // column 8 * j + 2 * t4 + (e % 2).
  const T* bias = static_cast<const T*>(p.bias);
  T* out = static_cast<T*>(p.out);
  T* Cs = reinterpret_cast<T*>(gbase);
  const int g = lane >> 2, t4 = lane & 3;
  const int rbase = wg * 64 + (warp & 3) * 16 + g;
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const int cl = 8 * j + 2 * t4;
    const int col = n0 + cl;
    const float b0 = bias && col < p.N ? Elem<T>::load(bias, col) : 0.f;
    const float b1 = bias && col + 1 < p.N ? Elem<T>::load(bias, col + 1) : 0.f;
#pragma unroll
    for (int h = 0; h < 2; ++h)
      *reinterpret_cast<uint32_t*>(Cs + (rbase + 8 * h) * L::LDC + cl) =
          tc::pack2<T>(acc[4 * j + 2 * h] + b0, acc[4 * j + 2 * h + 1] + b1);
  }
  __syncthreads();
  if (p.vec_out) {
    constexpr int CH = BN / 8;
#pragma unroll 4
    for (int c = tid; c < kWgBM * CH; c += kWgThreads) {
      const int r = c / CH, cc = c - r * CH;
      const int64_t row = m0 + r;
      const int col = n0 + cc * 8;
      if (row < p.M && col < p.N)
        *reinterpret_cast<uint4*>(out + row * p.N + col) = *reinterpret_cast<const uint4*>(Cs + r * L::LDC + cc * 8);
    }
  } else {
    for (int i = tid; i < kWgBM * BN; i += kWgThreads) {
      const int r = i / BN, c = i - r * BN;
      const int64_t row = m0 + r;
      const int col = n0 + c;
      if (row < p.M && col < p.N) out[row * p.N + col] = Cs[r * L::LDC + c];
    }
  }
#endif
}

template <class T, int BN, int S, int D, int MINB>
void launch_wgmma(IgParams p, cudaStream_t s, const char* name) {
  auto kern = conv_wgmma_kernel<T, BN, S, D, MINB>;
  constexpr int smem = static_cast<int>(WgTile<BN, S, D>::SMEM);
  p.tiles_n = (p.N + BN - 1) / BN;
  const int64_t tiles = (p.M + kWgBM - 1) / kWgBM * p.tiles_n;
  if (tiles > INT_MAX) throw DeviceError(std::string("CUDA kernel '") + name + "': output too large");
  TESSERA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  kern<<<static_cast<unsigned>(tiles), kWgThreads, smem, s>>>(p);
  TESSERA_CUDA_CHECK_LAUNCH(name);
}

}  // namespace

bool conv3d_wgmma(const Conv3dArgs& a, int64_t prev_frames, const ConvPlan& plan, const ExecCtx& ctx,
                  const char* name) {
  const bool trace = plan.trace;
  auto refuse = [&](const char* why) {
    if (trace) std::fprintf(stderr, "[tessera conv] %s: wgmma not taken (%s)\n", name, why);
    return false;
  };
  if (ctx.sm != 90) return refuse("not an sm_90 device");
  if (const char* why = refusal(a, prev_frames, kWgBK, a.cout)) return refuse(why);
  // One or two k-steps leave nothing to pipeline: the mma.sync kernel is faster there (the
  // patch embedding, K = 64: 0.080 vs 0.104 ms on the H100).
  if (a.kt * a.kh * a.kw * a.cin < 2 * kWgBK) return refuse("K < 128");
  // A 1-tap weight is used as it is (weight_nk makes no copy): it must be aligned too.
  if (a.kt * a.kh * a.kw == 1 && !aligned_to(a.weight, 16)) return refuse("weight not 16-byte aligned");
  if (!device_runs_sm90a()) return refuse("the device does not run the sm_90a binary");

  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream);
  IgParams p = make_params(a, prev_frames, a.weight, a.cout);  // p.w: set below, once the k order is known

  // Output-channel tile: the one of 192 / 128 / 96 / 64 that pads Cout least (ties: the wider:
  // m64n192 does more math per byte of shared memory read than m64n128).
  // The plan may force one. Unlike the mma.sync kernel, no narrower tile for small M (slower
  // here: NOTES.md).
  // At K <= 256 (few k-steps) two 128-wide blocks per SM beat one 192-wide (0.047 vs 0.056 ms on
  // the 1x1x1 shortcut 192 -> 384).
  int bn = p.K > 4 * kWgBK ? 192 : 128;
  for (int c : {128, 96, 64})
    if (c < bn && (p.N + c - 1) / c * c < (p.N + bn - 1) / bn * bn) bn = c;
  bn = forced_tile(bn, plan.tile_n, {192, 128, 96, 64});
  // Pipeline: ws = the warp-specialised persistent kernel (conv3d_wgmma_ws.cu; needs an even
  // Cout); s4d2 = 4 stages, copies two k-steps ahead, one wgmma group left in flight across
  // each barrier (one block per SM at BN = 128); s3d2 = 3 stages, each k-step's wgmma waited for
  // at once, two blocks per SM. s4d2 measured 2-3% faster than s3d2 on the decoder's 3x3x3
  // convs, s3d2 1.4x faster at K <= 256 (few k-steps: the 1x1x1 shortcut).
  // The plan may force one, and have ws load its weight tiles by cp.async instead of TMA.
  // (3 stages one step ahead made ptxas serialise the wgmma: C7515.)
  // ws keeps one block per SM: below 128 columns the all-threads kernel's two blocks per SM
  // keep more wgmma in flight; below K = 2048 (32 k-steps) its persistent ring has too little to
  // hide and s4d2 was as fast or faster (conv_in K = 432: 0.049 vs 0.035 ms; time_up K = 1152:
  // 0.053 vs 0.049; benchmarks/results/conv-h100.md).
  enum class Pipe { s3d2, s4d2, ws };
  Pipe pipe = p.K > 4 * kWgBK ? (bn >= 128 && p.K > 2048 ? Pipe::ws : Pipe::s4d2) : Pipe::s3d2;
  switch (plan.pipeline) {
    case ConvPipeline::Ws: pipe = Pipe::ws; break;
    case ConvPipeline::S4d2: pipe = Pipe::s4d2; break;
    case ConvPipeline::S3d2: pipe = Pipe::s3d2; break;
    case ConvPipeline::Auto: break;
  }
  if (pipe == Pipe::ws && !p.pair_out) pipe = Pipe::s4d2;
  if (trace) trace_launch(name, pipe == Pipe::ws ? "wgmma-ws" : "wgmma", bn, p);
  std::shared_ptr<Storage> wbuf = weight_nk(a, ctx, name);  // [Cout][K], k = tap * Cin + ci
  p.w = wbuf ? wbuf->ptr : a.weight;
  if (pipe == Pipe::ws) {
    wgconv::WsOptions o;
    o.tma_weight = plan.ws_tma_weight;
    o.trace = trace;
    wgconv::launch_ws(a.dtype == DType::BF16, bn, p, o, ctx.sms, s, name);
    return true;
  }
  auto go = [&](auto tag) {
    using T = decltype(tag);
    auto pick = [&](auto bn_tag) {
      constexpr int BN = decltype(bn_tag)::value;
      if (pipe == Pipe::s4d2) launch_wgmma<T, BN, 4, 2, (BN >= 128 ? 1 : 2)>(p, s, name);
      else launch_wgmma<T, BN, 3, 2, (BN > 128 ? 1 : 2)>(p, s, name);
    };
    if (bn == 192) pick(std::integral_constant<int, 192>{});
    else if (bn == 128) pick(std::integral_constant<int, 128>{});
    else if (bn == 96) pick(std::integral_constant<int, 96>{});
    else pick(std::integral_constant<int, 64>{});
  };
  if (a.dtype == DType::BF16) go(__nv_bfloat16{});
  else go(__half{});
  // wbuf returns to the caching allocator here; the kernel above runs before any later user
  // of the block on this single stream.
  return true;
}

}  // namespace tessera
