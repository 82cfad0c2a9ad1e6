// The warp-specialised Hopper implicit-GEMM conv3d (bf16 / f16): the GEMM view, A gather and
// k order of conv3d_igemm.cu (conv_igemm.cuh) and the swizzled tiles of conv3d_wgmma.cu, with
// copy and math in different warpgroups so that neither waits for a block barrier.
//
// Block: 384 threads, one per SM, persistent over output tiles (tile = blockIdx.x + i *
// gridDim.x, 128 x BN each). Warpgroup 0 is the producer: per k-step of 64 it copies A (gathered
// from x / prev, zero for padding) and B (the weight, [Cout][K]) into a ring of S stages with
// cp.async. It keeps `lag` k-steps of copies in flight; when the oldest has landed
// (cp.async.wait_group) it fences the writes over to the async proxy and arrives on the stage's
// `full` mbarrier. Warpgroups 1 and 2 are consumers, 64 rows each: they wait on `full`, issue
// four wgmma m64nBNk16 from shared memory, keep one wgmma group in flight and, once the group of
// the previous k-step is done, arrive on that stage's `empty` mbarrier (one arrival per warp),
// which is what the producer waits for before refilling it. The ring runs on across tiles, so
// the producer gathers the next tile while the consumers store this one (bias added in fp32,
// pairs of outputs straight from the accumulators).
#include <climits>
#include <string>

#include "../common/dtype.cuh"
#include "../common/sm90.cuh"
#include "../common/wgmma_ops.cuh"
#include "../gemm/mma.cuh"
#include "../runtime/cuda_backend.h"
#include "conv_igemm_host.h"
#include "conv_wgmma.cuh"
#include "conv_wgmma_ws.h"

namespace tessera {
namespace wgconv {
namespace {

using namespace igemm;

constexpr int kThreads = 384;  // producer warpgroup + two consumer warpgroups
constexpr int kStages = 5;

template <int BN>
struct WsTile {
  static constexpr uint32_t A_BYTES = kBM * 128u, B_BYTES = BN * 128u, STAGE = A_BYTES + B_BYTES;
  static constexpr uint32_t BARS = kStages * STAGE;  // full[S], then empty[S], 8 bytes each
  static constexpr size_t SMEM = BARS + 2 * kStages * 8 + 1024;  // + slack to align the base to 1024
};

#if TESSERA_SM90A
__device__ __forceinline__ void cp_async16_ca(void* smem, const void* gmem, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(sm90::smem_addr(smem)), "l"(gmem),
               "r"(src_bytes));
}

// cp.async.wait_group takes an immediate; lag - 1 groups stay in flight.
__device__ __forceinline__ void wait_all_but(int lag) {
  if (lag <= 2) tc::cp_async_wait<1>();
  else if (lag == 3) tc::cp_async_wait<2>();
  else tc::cp_async_wait<3>();
}
#endif

template <class T, int BN>
__global__ void __launch_bounds__(kThreads, 1) conv_wgmma_ws_kernel(const Params p, const int64_t tiles, const int lag,
                                                                     const int l1_gather) {
#if TESSERA_SM90A
  using L = WsTile<BN>;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw = sm90::smem_addr(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;
  unsigned char* gbase = smem_raw + (base - raw);  // the same bytes, generic address
  const uint32_t full = base + L::BARS, empty = full + kStages * 8;

  const int tid = threadIdx.x;
  const int wg = tid >> 7;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      sm90::mbar_init(full + s * 8, 128);
      sm90::mbar_init(empty + s * 8, 8);  // one arrival per consumer warp
    }
    sm90::mbar_init_fence();
  }
  __syncthreads();
  const int KT = (p.K + kBK - 1) / kBK;

  if (wg == 0) {
    // ---- producer ----
    const T* xp = static_cast<const T*>(p.x);
    const T* pp = static_cast<const T*>(p.prev);
    const T* wp = static_cast<const T*>(p.w);
    constexpr int A_IT = kBM / 16;  // this thread's chunk column a_kc of rows a_r0 + 16 i
    constexpr int B_IT = BN * 8 / 128;
    static_assert(BN * 8 % 128 == 0, "B loader");
    const int a_kc = tid & 7, a_r0 = tid >> 3;
    uint32_t it = 0;  // k-steps issued over all tiles: stage it % S, its use it / S
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const int64_t m0 = tile / p.tiles_n * kBM;
      const int n0 = static_cast<int>(tile % p.tiles_n) * BN;
      Row rows[A_IT];
#pragma unroll
      for (int i = 0; i < A_IT; ++i) rows[i] = make_row(p, m0 + a_r0 + 16 * i);
      TapCursor cur{0, 0, 0, 0, 0, 0};
      cur.advance(p, a_kc * 8);
#pragma unroll 1
      for (int kt = 0; kt < KT; ++kt, ++it) {
        const int stage = static_cast<int>(it % kStages);
        if (it >= static_cast<uint32_t>(kStages)) sm90::mbar_wait(empty + stage * 8, (it / kStages - 1) & 1);
        unsigned char* sa = gbase + stage * L::STAGE;
#pragma unroll
        for (int i = 0; i < A_IT; ++i) {
          bool from_prev = false;
          int64_t off = 0;
          const bool ok = chunk_source(p, rows[i], cur, &from_prev, &off);
          const T* src = ok ? (from_prev ? pp : xp) + off : xp;
          if (l1_gather) cp_async16_ca(sa + swz(a_r0 + 16 * i, a_kc), src, ok ? 16 : 0);
          else tc::cp_async16(sa + swz(a_r0 + 16 * i, a_kc), src, ok ? 16 : 0);
        }
        cur.advance(p, kBK);
        unsigned char* sb = sa + L::A_BYTES;
        const int k0 = kt * kBK;
#pragma unroll
        for (int j = 0; j < B_IT; ++j) {
          const int c = tid + j * 128;
          const int r = c >> 3, kc = c & 7;
          const int n = n0 + r, k = k0 + kc * 8;
          const bool ok = n < p.N && k < p.K;
          tc::cp_async16(sb + swz(r, kc), ok ? wp + static_cast<int64_t>(n) * p.K + k : wp, ok ? 16 : 0);
        }
        tc::cp_async_commit();
        // The copies of k-step it - (lag - 1) have landed: hand that stage to the consumers.
        if (it + 1 >= static_cast<uint32_t>(lag)) {
          wait_all_but(lag);
          asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
          sm90::mbar_arrive(full + static_cast<int>((it + 1 - lag) % kStages) * 8);
        }
      }
    }
    tc::cp_async_wait<0>();
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    for (uint32_t j = it + 1 >= static_cast<uint32_t>(lag) ? it + 1 - lag : 0; j < it; ++j)
      sm90::mbar_arrive(full + static_cast<int>(j % kStages) * 8);
  } else {
    // ---- consumers ----
    const int cw = wg - 1;  // rows cw * 64 .. + 63 of the tile
    const int lane = tid & 31, warp = (tid >> 5) & 3;
    const T* bias = static_cast<const T*>(p.bias);
    T* out = static_cast<T*>(p.out);
    const int g = lane >> 2, t4 = lane & 3;
    float acc[BN / 2];
    uint32_t it = 0;
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const int64_t m0 = tile / p.tiles_n * kBM;
      const int n0 = static_cast<int>(tile % p.tiles_n) * BN;
#pragma unroll
      for (int i = 0; i < BN / 2; ++i) acc[i] = 0.f;
#pragma unroll 1
      for (int kt = 0; kt < KT; ++kt, ++it) {
        const int stage = static_cast<int>(it % kStages);
        sm90::mbar_wait(full + stage * 8, (it / kStages) & 1);
        const uint32_t sa = base + stage * L::STAGE;
        const uint32_t a0 = sa + cw * (64u * 128u), b0 = sa + L::A_BYTES;
        sm90::wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBK / 16; ++kk)
          sm90::Wgmma<T, BN>::ss(acc, sm90::make_desc(a0 + kk * 32u, 16, 1024),
                                 sm90::make_desc(b0 + kk * 32u, 16, 1024), 1);
        sm90::wgmma_commit();
        sm90::wgmma_wait<1>();  // the previous k-step's group is done: its stage is free
        if (kt > 0 && lane == 0) sm90::mbar_arrive(empty + static_cast<int>((it - 1) % kStages) * 8);
      }
      sm90::wgmma_wait<0>();
      sm90::fence_regs(acc);
      if (lane == 0) sm90::mbar_arrive(empty + static_cast<int>((it - 1) % kStages) * 8);

      // Accumulator j * 4 + e: row warp * 16 + g + 8 * (e / 2) of this warpgroup's 64,
      // column 8 * j + 2 * t4 + (e % 2). pair_out: even N, so a pair never straddles it.
      const int64_t rbase = m0 + cw * 64 + warp * 16 + g;
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        const int col = n0 + 8 * j + 2 * t4;
        if (col >= p.N) continue;
        const float b0 = bias ? Elem<T>::load(bias, col) : 0.f;
        const float b1 = bias ? Elem<T>::load(bias, col + 1) : 0.f;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int64_t row = rbase + 8 * h;
          if (row < p.M)
            *reinterpret_cast<uint32_t*>(out + row * p.N + col) =
                tc::pack2<T>(acc[4 * j + 2 * h] + b0, acc[4 * j + 2 * h + 1] + b1);
        }
      }
    }
  }
#endif
}

template <class T, int BN>
void launch(Params p, const WsOptions& o, cudaStream_t s, const char* name) {
  auto kern = conv_wgmma_ws_kernel<T, BN>;
  constexpr int smem = static_cast<int>(WsTile<BN>::SMEM);
  p.tiles_n = (p.N + BN - 1) / BN;
  const int64_t tiles = (p.M + kBM - 1) / kBM * p.tiles_n;
  if (tiles > INT_MAX) throw DeviceError(std::string("CUDA kernel '") + name + "': output too large");
  const int64_t grid = tiles < sm_count_cached() ? tiles : sm_count_cached();
  TESSERA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const int lag = o.lag < 2 ? 2 : (o.lag > 4 ? 4 : o.lag);
  kern<<<static_cast<unsigned>(grid), kThreads, smem, s>>>(p, tiles, lag, o.l1_gather ? 1 : 0);
  TESSERA_CUDA_CHECK_LAUNCH(name);
}

template <class T>
void launch_t(int bn, const Params& p, const WsOptions& o, cudaStream_t s, const char* name) {
  if (bn == 192) launch<T, 192>(p, o, s, name);
  else if (bn == 128) launch<T, 128>(p, o, s, name);
  else if (bn == 96) launch<T, 96>(p, o, s, name);
  else launch<T, 64>(p, o, s, name);
}

}  // namespace

void launch_ws(bool bf16, int bn, Params p, const WsOptions& o, cudaStream_t s, const char* name) {
  if (bf16) launch_t<__nv_bfloat16>(bn, p, o, s, name);
  else launch_t<__half>(bn, p, o, s, name);
}

}  // namespace wgconv
}  // namespace tessera
