// The warp-specialised Hopper implicit-GEMM conv3d (bf16 / f16): the GEMM view, A gather and
// k order of conv3d_igemm.cu (conv_igemm.cuh) and the swizzled tiles of conv3d_wgmma.cu, with
// copy and math in different warpgroups so that neither waits for a block barrier.
//
// Block: 512 threads, one per SM, persistent over output tiles (tile = blockIdx.x + i *
// gridDim.x, 128 x BN each). Warpgroups 0 and 1 are the producers: per k-step of 64 they copy A
// (gathered from x / prev, zero for padding; 4 chunks of 16 bytes per thread) into a ring of S
// stages with cp.async, and B (the weight, [Cout][K]) arrives by one TMA tile load per stage
// (or by their cp.async). Each producer thread ends a stage with cp.async.mbarrier.arrive.noinc
// on the stage's `full` mbarrier, which counts the arrival once that thread's copies have
// landed: the producers never wait for their own copies, only for a free stage. Warpgroups 2
// and 3 are the consumers, 64 rows each: they wait on `full`, fence the stage over to the async
// proxy (cp.async writes are generic-proxy, wgmma reads async-proxy), issue four wgmma
// m64nBNk16 from shared memory, keep one wgmma group in flight and, once the previous k-step's
// group is done, arrive on that stage's `empty` mbarrier (one arrival per warp), which is what
// the producers wait for before refilling it. The ring runs on across tiles, so the producers
// gather the next tile while the consumers store this one (bias added in fp32, pairs of outputs
// straight from the accumulators). setmaxnreg moves registers from the producers to the
// consumers' accumulators.
//
// Two producer warpgroups, arriving with noinc, the weight by TMA and the copy loops shared with
// s4d2 (few live producer registers) are each what made it faster on the H100: the producers'
// instruction stream sets the pace (NOTES.md: the steps, and what was tried and dropped).
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>

#include "cuda/common/dtype.cuh"
#include "cuda/common/sm90.cuh"
#include "cuda/common/tensor_map.h"
#include "cuda/common/wgmma_ops.cuh"
#include "cuda/gemm/mma.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "conv_igemm_host.h"
#include "conv_wgmma.cuh"
#include "conv_wgmma_ws.h"

namespace tessera {
namespace wgconv {
namespace {

using namespace igemm;

constexpr int kProducerWgs = 2;
constexpr int kProducers = kProducerWgs * 128;
constexpr int kThreads = kProducers + 256;  // + two consumer warpgroups
constexpr int kStages = 5;

template <int BN>
struct WsTile {
  static constexpr uint32_t A_BYTES = kBM * 128u, B_BYTES = BN * 128u, STAGE = A_BYTES + B_BYTES;
  static constexpr uint32_t BARS = kStages * STAGE;  // full[S], then empty[S], 8 bytes each
  static constexpr size_t SMEM = BARS + 2 * kStages * 8 + 1024;  // + slack to align the base to 1024
};

#if TESSERA_SM90A
// Arrives on `bar` when every cp.async this thread issued before has completed; noinc: the
// arrival is one of the barrier's expected count (the producer threads).
__device__ __forceinline__ void cp_async_arrive_noinc(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
#endif

// TMA_B: B arrives by one TMA tile load per stage (wmap: the [Cout][K] weight, boxes of 64 x BN)
// instead of the producers' cp.async (the fallback where the driver cannot encode a map).
template <class T, int BN, bool TMA_B>
__global__ void __launch_bounds__(kThreads, 1)
    conv_wgmma_ws_kernel(const Params p, const int64_t tiles, const __grid_constant__ CUtensorMap wmap) {
#if TESSERA_SM90A
  using L = WsTile<BN>;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw = sm90::smem_addr(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;
  unsigned char* gbase = smem_raw + (base - raw);  // the same bytes, generic address
  const uint32_t full = base + L::BARS, empty = full + kStages * 8;

  // Registers per thread after setmaxnreg: 256 x 88 + 256 x 168 = 65536 = 512 x 128 (what the
  // block starts with).
  constexpr int kProducerRegs = 88, kConsumerRegs = 168;
  const int tid = threadIdx.x;
  const int wg = tid >> 7;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      sm90::mbar_init(full + s * 8, kProducers + (TMA_B ? 1 : 0));
      sm90::mbar_init(empty + s * 8, 8);  // one arrival per consumer warp
    }
    sm90::mbar_init_fence();
  }
  __syncthreads();
  const int KT = (p.K + kBK - 1) / kBK;

  if (wg < kProducerWgs) {
    // ---- producers ----
    sm90::setmaxnreg_dec<kProducerRegs>();
    constexpr int RSTEP = kProducers / 8;  // this thread: chunk column a_kc of rows a_r0 + RSTEP i
    constexpr int A_IT = kBM / RSTEP;
    const int a_kc = tid & 7, a_r0 = tid >> 3;
    uint32_t it = 0;  // k-steps issued over all tiles: stage it % S, its use it / S
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const int64_t m0 = tile / p.tiles_n * kBM;
      const int n0 = static_cast<int>(tile % p.tiles_n) * BN;
      Row rows[A_IT];
#pragma unroll
      for (int i = 0; i < A_IT; ++i) rows[i] = make_row(p, m0 + a_r0 + RSTEP * i);
      TapCursor cur{0, 0, 0, 0, 0, 0};
      cur.advance(p, a_kc * 8);
#pragma unroll 1
      for (int kt = 0; kt < KT; ++kt, ++it) {
        const int stage = static_cast<int>(it % kStages);
        if (it >= static_cast<uint32_t>(kStages)) sm90::mbar_wait(empty + stage * 8, (it / kStages - 1) & 1);
        unsigned char* sa = gbase + stage * L::STAGE;
        copy_a_chunks<T, A_IT, RSTEP>(sa, p, rows, cur, a_r0, a_kc);
        cur.advance(p, kBK);
        const int k0 = kt * kBK;
        if (TMA_B) {
          if (tid == 0) {  // zeros past Cout / K come from the map's out-of-bounds fill
            sm90::mbar_arrive_expect_tx(full + stage * 8, L::B_BYTES);
            sm90::tma_load_2d(base + stage * L::STAGE + L::A_BYTES, &wmap, full + stage * 8, k0, n0);
          }
        } else {
          copy_weight_tile<T, BN, kProducers>(sa + L::A_BYTES, p, n0, k0, tid);
        }
        // The stage's `full` barrier counts this thread's arrival once its copies above have
        // landed, with no wait here: the producer runs on to the next stage at once.
        cp_async_arrive_noinc(full + stage * 8);
      }
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");  // no copy outlives its thread
  } else {
    // ---- consumers ----
    sm90::setmaxnreg_inc<kConsumerRegs>();
    const int cw = wg - kProducerWgs;  // rows cw * 64 .. + 63 of the tile
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
        // The stage was written by cp.async (generic proxy); wgmma reads it through the async proxy.
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
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

// The [N][K] weight as a 2-D tensor map with boxes of 64 k x bn rows, 128-byte swizzle.
bool make_weight_map(CUtensorMap* m, const Params& p, bool bf16, int bn) {
  auto fn = tensor_map_encoder();
  if (!fn) return false;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(p.K), static_cast<cuuint64_t>(p.N)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(p.K) * 2};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(kBK), static_cast<cuuint32_t>(bn)};
  const cuuint32_t estr[2] = {1, 1};
  std::memset(m, 0, sizeof(*m));
  return fn(m, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, const_cast<void*>(p.w),
            dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <class T, int BN>
void launch(Params p, const WsOptions& o, int sms, cudaStream_t s, const char* name) {
  CUtensorMap wmap;
  const bool tma = o.tma_weight && make_weight_map(&wmap, p, std::is_same<T, __nv_bfloat16>::value, BN);
  if (!tma) std::memset(&wmap, 0, sizeof(wmap));
  auto kern = tma ? conv_wgmma_ws_kernel<T, BN, true> : conv_wgmma_ws_kernel<T, BN, false>;
  constexpr int smem = static_cast<int>(WsTile<BN>::SMEM);
  p.tiles_n = (p.N + BN - 1) / BN;
  const int64_t tiles = (p.M + kBM - 1) / kBM * p.tiles_n;
  if (tiles > INT_MAX) throw DeviceError(std::string("CUDA kernel '") + name + "': output too large");
  const int64_t grid = tiles < sms ? tiles : sms;
  if (o.trace)
    std::fprintf(stderr, "[tessera conv] %s: ws grid %lld (tiles %lld, tma %d)\n", name, static_cast<long long>(grid),
                 static_cast<long long>(tiles), tma ? 1 : 0);
  TESSERA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  kern<<<static_cast<unsigned>(grid), kThreads, smem, s>>>(p, tiles, wmap);
  TESSERA_CUDA_CHECK_LAUNCH(name);
}

template <class T>
void launch_t(int bn, const Params& p, const WsOptions& o, int sms, cudaStream_t s, const char* name) {
  if (bn == 192) launch<T, 192>(p, o, sms, s, name);
  else if (bn == 128) launch<T, 128>(p, o, sms, s, name);
  else if (bn == 96) launch<T, 96>(p, o, sms, s, name);
  else launch<T, 64>(p, o, sms, s, name);
}

}  // namespace

void launch_ws(bool bf16, int bn, Params p, const WsOptions& o, int sms, cudaStream_t s, const char* name) {
  if (bf16) launch_t<__nv_bfloat16>(bn, p, o, sms, s, name);
  else launch_t<__half>(bn, p, o, sms, s, name);
}

}  // namespace wgconv
}  // namespace tessera
