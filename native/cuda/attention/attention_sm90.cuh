// The Hopper (sm_90a) attention forward kernel: FlashAttention-3 style, bf16 / f16,
// head dim 64 or 128, fp32 accumulation (design and numbers: NOTES.md, "Hopper").
//
// A block owns BR = 64 * NCWG query rows of one (batch, head) and has NCWG + 1 warpgroups:
//   warpgroup 0 (producer, registers cut to 24 by setmaxnreg): one thread issues the TMA
//     loads - each consumer's 64-row Q tile once, then K and V tiles of BC keys into a ring
//     of STAGES shared-memory stages, each guarded by full / empty mbarriers (K and V have
//     their own, so a K stage is refilled as soon as S = Q K^T has read it);
//   warpgroups 1..NCWG (consumers, registers raised by setmaxnreg): 64 query rows each.
//     S = Q K^T with wgmma (Q and K from shared memory, both K-major), scale / key mask /
//     online softmax in registers (log2 domain, exp2f), P rounded to T and fed from
//     registers as the A operand of O += P V (V from shared memory read MN-major).
// Shared tiles use the 128-byte swizzle that TMA writes and the wgmma descriptors read:
// a tile of R rows x D channels is D/64 blocks of [R rows][64 channels = 128 bytes], and
// within each 1024-byte group of 8 rows the 16-byte chunk c of row r sits at c ^ (r % 8).
//
// Schedule: the S GEMM of key tile i+1 and the PV GEMM of tile i are issued together, so the
// softmax of tile i+1 runs while PV is in flight; and the consumer warpgroups take turns
// issuing their GEMMs (ping-pong, named barriers), so one's softmax runs while the other's
// GEMMs use the tensor cores.
//
// Token grouping (see NOTES.md): the block's query rows are members sub*BR .. of group
// grp (tokens grp*gstride + m, m < gsq) and its keys the members c < nvalid of the same
// group (tokens grp*gstride + c); full attention is one group with gstride 0, spatial one
// group per frame. Keys past nvalid = min(gsk, key_len - grp*gstride) are masked (only the
// last key tile can hold any); rows past the group are computed but not stored. Rows of
// tiles that TMA reads past the tensor's end come back as zeros.
#pragma once
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "cuda/gemm/mma.cuh"
#include "cuda/common/sm90.cuh"
#include "cuda/common/wgmma_ops.cuh"

namespace tessera {
namespace sm90 {

struct AttnParams {
  void* o;
  int lq, lk, heads;
  float scale_log2;  // scale * log2(e), > 0
  int gsq, gsk;      // query / key members per group
  int gstride;       // first token of group g = g * gstride (members are consecutive tokens)
  int tiles_per_group;
  const int32_t* key_lengths;
};

template <int D, int NCWG, int BC, int STAGES>
struct Layout {
  static constexpr int BR = 64 * NCWG;
  static constexpr int DB = D / 64;                      // 64-channel (128-byte) blocks
  static constexpr uint32_t Q_BLK = 64u * 128u;          // one 64-row block
  static constexpr uint32_t Q_WG = DB * Q_BLK;           // one consumer's Q tile
  static constexpr uint32_t KV_BLK = uint32_t(BC) * 128u;  // one BC-row block
  static constexpr uint32_t KV = DB * KV_BLK;            // one K (or V) stage
  static constexpr uint32_t OFF_Q = 0;
  static constexpr uint32_t OFF_K = NCWG * Q_WG;
  static constexpr uint32_t OFF_V = OFF_K + STAGES * KV;
  static constexpr uint32_t OFF_BAR = OFF_V + STAGES * KV;
  static constexpr int NBAR = NCWG + 4 * STAGES;
  static constexpr size_t SMEM = OFF_BAR + 8 * NBAR + 1024;  // + slack to align the base to 1024
  // mbarrier indices
  static constexpr int q_full(int w) { return w; }
  static constexpr int k_full(int s) { return NCWG + s; }
  static constexpr int v_full(int s) { return NCWG + STAGES + s; }
  static constexpr int k_empty(int s) { return NCWG + 2 * STAGES + s; }
  static constexpr int v_empty(int s) { return NCWG + 3 * STAGES + s; }
};

// Register budgets after setmaxnreg: the producer warpgroup drops to kAttnProducerRegs and
// the consumers share what the block started with (64512 = 384 x 168 or 512 x 126, rounded
// to the 8-register granule): 2 consumers 128 x 24 + 256 x 240, 3 consumers 128 x 24 + 384 x 160.
constexpr int kAttnProducerRegs = 24;
template <int NCWG>
struct Regs {
  static constexpr int kProducer = kAttnProducerRegs;
  static constexpr int kConsumer = (64512 - 128 * kProducer) / (128 * NCWG) / 8 * 8;
};
static_assert(Regs<2>::kConsumer == 240 && Regs<3>::kConsumer == 160, "the measured budgets");

constexpr int kSchedBarrier = 8;  // named barriers kSchedBarrier + w (ping-pong turns)

template <class T, int D, int NCWG, int BC, int STAGES>
__global__ void __launch_bounds__((NCWG + 1) * 128, 1)
    attn_wgmma_kernel(const __grid_constant__ CUtensorMap tq, const __grid_constant__ CUtensorMap tk,
                      const __grid_constant__ CUtensorMap tv, const AttnParams p) {
#if TESSERA_SM90A
  using L = Layout<D, NCWG, BC, STAGES>;
  static_assert(D == 64 || D == 128, "head dim");
  static_assert(BC == 128 || BC == 64, "key tile");

  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  auto bar = [&](int i) -> uint32_t { return base + L::OFF_BAR + 8u * static_cast<uint32_t>(i); };

  const int tid = threadIdx.x;
  const int tile = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int grp = tile / p.tiles_per_group;
  const int sub = tile - grp * p.tiles_per_group;
  const int key_len = p.key_lengths ? max(0, min(p.key_lengths[b], p.lk)) : p.lk;
  const int gk0 = grp * p.gstride;  // first token of the group (queries and keys)
  const int nvalid = max(0, min(p.gsk, key_len - gk0));
  const int ntiles = (nvalid + BC - 1) / BC;

  if (tid == 0) {
#pragma unroll
    for (int w = 0; w < NCWG; ++w) mbar_init(bar(L::q_full(w)), 1);
#pragma unroll
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(bar(L::k_full(s)), 1);
      mbar_init(bar(L::v_full(s)), 1);
      mbar_init(bar(L::k_empty(s)), NCWG * 4);  // lane 0 of every consumer warp
      mbar_init(bar(L::v_empty(s)), NCWG * 4);
    }
    mbar_init_fence();
  }
  __syncthreads();

  const int wg = tid / 128;
  if (wg == 0) {
    // ------------------------------ producer ------------------------------
    setmaxnreg_dec<Regs<NCWG>::kProducer>();
    if (tid == 0) {
      tma_prefetch_desc(&tq);
      tma_prefetch_desc(&tk);
      tma_prefetch_desc(&tv);
      const int q0 = gk0 + sub * L::BR;
#pragma unroll
      for (int w = 0; w < NCWG; ++w) {
        if (sub * L::BR + w * 64 < p.gsq) {
          mbar_arrive_expect_tx(bar(L::q_full(w)), L::Q_WG);
#pragma unroll
          for (int db = 0; db < L::DB; ++db)
            tma_load_4d(base + L::OFF_Q + w * L::Q_WG + db * L::Q_BLK, &tq, bar(L::q_full(w)), db * 64, h, q0 + w * 64,
                        b);
        } else {
          // No row of this consumer is in the group: no load (every box TMA reads starts
          // inside the tensor); it computes on whatever the buffer holds and stores nothing.
          mbar_arrive(bar(L::q_full(w)));
        }
      }
      for (int i = 0; i < ntiles; ++i) {
        const int s = i % STAGES;
        const uint32_t ph = static_cast<uint32_t>(i / STAGES) & 1u;
        const int row = gk0 + i * BC;
        mbar_wait(bar(L::k_empty(s)), ph ^ 1u);
        mbar_arrive_expect_tx(bar(L::k_full(s)), L::KV);
#pragma unroll
        for (int db = 0; db < L::DB; ++db)
          tma_load_4d(base + L::OFF_K + s * L::KV + db * L::KV_BLK, &tk, bar(L::k_full(s)), db * 64, h, row, b);
        mbar_wait(bar(L::v_empty(s)), ph ^ 1u);
        mbar_arrive_expect_tx(bar(L::v_full(s)), L::KV);
#pragma unroll
        for (int db = 0; db < L::DB; ++db)
          tma_load_4d(base + L::OFF_V + s * L::KV + db * L::KV_BLK, &tv, bar(L::v_full(s)), db * 64, h, row, b);
      }
    }
  } else {
    // ------------------------------ consumers ------------------------------
    setmaxnreg_inc<Regs<NCWG>::kConsumer>();
    const int w = wg - 1;
    const int wtid = tid - 128 * wg;
    const int warp = wtid >> 5, lane = wtid & 31;
    const int g = lane >> 2, t4 = lane & 3;
    const uint32_t qa = base + L::OFF_Q + w * L::Q_WG;
    const float sl = p.scale_log2;

    constexpr int NS = BC / 2;  // S accumulators per thread (64 rows x BC over 128 threads)
    constexpr int NO = D / 2;   // O accumulators per thread
    float s[NS];
    float o[NO];
    uint32_t pr[BC / 4];  // P as packed pairs of T: the A fragments of BC / 16 k-steps
#pragma unroll
    for (int i = 0; i < NS; ++i) s[i] = 0.f;
#pragma unroll
    for (int i = 0; i < NO; ++i) o[i] = 0.f;
    float m_run[2] = {-INFINITY, -INFINITY};
    float l_run[2] = {0.f, 0.f};
    float corr[2] = {1.f, 1.f};

    // S = Q K^T over D / 16 k-steps of 16 channels (32 bytes inside a swizzle row).
    auto gemm_qk = [&](int stage) {
      const uint32_t ka = base + L::OFF_K + stage * L::KV;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const uint32_t oq = (kk >> 2) * L::Q_BLK + (kk & 3) * 32u;
        const uint32_t ok = (kk >> 2) * L::KV_BLK + (kk & 3) * 32u;
        Wgmma<T, BC>::ss(s, make_desc(qa + oq, 16, 1024), make_desc(ka + ok, 16, 1024), kk > 0 ? 1 : 0);
      }
    };
    // O += P V over BC / 16 k-steps of 16 keys (2048 bytes = two 8-row atoms).
    auto gemm_pv = [&](int stage) {
      const uint32_t va = base + L::OFF_V + stage * L::KV;
#pragma unroll
      for (int kc = 0; kc < BC / 16; ++kc)
        Wgmma<T, D>::rs(o, pr[4 * kc], pr[4 * kc + 1], pr[4 * kc + 2], pr[4 * kc + 3],
                        make_desc(va + kc * 2048u, L::KV_BLK, 1024), 1);
    };
    // Key mask, online softmax of key tile i (log2 domain); leaves fp32 P in s and the
    // factor for the running O in corr. Accumulator j*4 + e: row warp*16 + g + 8*(e/2),
    // key column 8*j + 2*t4 + (e % 2).
    auto softmax = [&](int i) {
      const int lim = nvalid - i * BC;
      if (lim < BC) {
#pragma unroll
        for (int j = 0; j < BC / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if (8 * j + 2 * t4 + (e & 1) >= lim) s[4 * j + e] = -INFINITY;
      }
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < BC / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) mx[e >> 1] = fmaxf(mx[e >> 1], s[4 * j + e]);
      float m_use[2];
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 1));
        mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 2));
        const float m_new = fmaxf(m_run[hr], mx[hr] * sl);
        m_use[hr] = m_new == -INFINITY ? 0.f : m_new;
        corr[hr] = exp2f(m_run[hr] - m_use[hr]);  // 0 while m_run is -inf
        m_run[hr] = m_new;
      }
      float rs[2] = {0.f, 0.f};
#pragma unroll
      for (int j = 0; j < BC / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float v = exp2f(fmaf(s[4 * j + e], sl, -m_use[e >> 1]));
          s[4 * j + e] = v;
          rs[e >> 1] += v;
        }
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) l_run[hr] = l_run[hr] * corr[hr] + rs[hr];  // per-thread partial
    };
    auto rescale_o = [&]() {
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        o[4 * j] *= corr[0];
        o[4 * j + 1] *= corr[0];
        o[4 * j + 2] *= corr[1];
        o[4 * j + 3] *= corr[1];
      }
    };
    // P -> A fragments: k-step kc covers S columns 16kc .. 16kc+15 = n-tiles 2kc, 2kc+1.
    auto pack_p = [&]() {
#pragma unroll
      for (int kc = 0; kc < BC / 16; ++kc) {
        pr[4 * kc] = tc::pack2<T>(s[8 * kc], s[8 * kc + 1]);
        pr[4 * kc + 1] = tc::pack2<T>(s[8 * kc + 2], s[8 * kc + 3]);
        pr[4 * kc + 2] = tc::pack2<T>(s[8 * kc + 4], s[8 * kc + 5]);
        pr[4 * kc + 3] = tc::pack2<T>(s[8 * kc + 6], s[8 * kc + 7]);
      }
    };
    auto release = [&](int barrier) {
      if (lane == 0) mbar_arrive(bar(barrier));
    };
    // Ping-pong turns: warpgroup w issues its GEMMs after warpgroup w-1 (mod NCWG) issued
    // the same section. Every warpgroup runs ntiles + 1 sections; the last warpgroup's first
    // arrive (before its first section) starts the round and its last one is left out, so
    // every named barrier ends balanced.
    auto turn_wait = [&]() { named_sync(kSchedBarrier + w, 256); };
    auto turn_pass = [&](bool last) {
      if (!(last && w == NCWG - 1)) named_arrive(kSchedBarrier + (w + 1) % NCWG, 256);
    };

    mbar_wait(bar(L::q_full(w)), 0);
    __syncwarp();

    if (ntiles > 0) {
      if (w == NCWG - 1) named_arrive(kSchedBarrier, 256);
      // key tile 0: S only
      mbar_wait(bar(L::k_full(0)), 0);
      __syncwarp();
      turn_wait();
      wgmma_fence();
      gemm_qk(0);
      wgmma_commit();
      turn_pass(false);
      wgmma_wait<0>();
      fence_regs(s);
      release(L::k_empty(0));
      softmax(0);
      pack_p();  // O is still zero: no rescale
      for (int i = 1; i < ntiles; ++i) {
        const int si = i % STAGES, sp = (i - 1) % STAGES;
        const uint32_t phi = static_cast<uint32_t>(i / STAGES) & 1u;
        const uint32_t php = static_cast<uint32_t>((i - 1) / STAGES) & 1u;
        mbar_wait(bar(L::k_full(si)), phi);
        mbar_wait(bar(L::v_full(sp)), php);
        __syncwarp();
        turn_wait();
        wgmma_fence();
        gemm_qk(si);  // S of tile i ...
        wgmma_commit();
        gemm_pv(sp);  // ... and O += P V of tile i-1, in flight together
        wgmma_commit();
        turn_pass(false);
        wgmma_wait<1>();  // S done (PV may still run)
        fence_regs(s);
        release(L::k_empty(si));
        softmax(i);
        wgmma_wait<0>();  // PV done: O and P may change
        fence_regs(o);
        release(L::v_empty(sp));
        rescale_o();
        pack_p();
      }
      const int sl_ = (ntiles - 1) % STAGES;
      const uint32_t phl = static_cast<uint32_t>((ntiles - 1) / STAGES) & 1u;
      mbar_wait(bar(L::v_full(sl_)), phl);
      __syncwarp();
      turn_wait();
      wgmma_fence();
      gemm_pv(sl_);
      wgmma_commit();
      turn_pass(true);
      wgmma_wait<0>();
      fence_regs(o);
      release(L::v_empty(sl_));
    }

    // ---- normalise and store: rows warp*16 + g (+ 8) of this consumer's 64 ----
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      l_run[hr] += __shfl_xor_sync(0xffffffffu, l_run[hr], 1);
      l_run[hr] += __shfl_xor_sync(0xffffffffu, l_run[hr], 2);
    }
    const int64_t row_stride = static_cast<int64_t>(p.heads) * D;
    T* ob = static_cast<T*>(p.o) + static_cast<int64_t>(b) * p.lq * row_stride + static_cast<int64_t>(h) * D;
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int m = sub * L::BR + w * 64 + warp * 16 + g + 8 * hr;
      if (m >= p.gsq) continue;
      const float inv = l_run[hr] > 0.f ? 1.f / l_run[hr] : 0.f;
      T* row = ob + static_cast<int64_t>(gk0 + m) * row_stride + 2 * t4;
#pragma unroll
      for (int j = 0; j < D / 8; ++j)
        *reinterpret_cast<uint32_t*>(row + 8 * j) = tc::pack2<T>(o[4 * j + 2 * hr] * inv, o[4 * j + 2 * hr + 1] * inv);
    }
  }
#endif
}

}  // namespace sm90
}  // namespace tessera

// ---- host side ----------------------------------------------------------------------
#include "cuda/runtime/cuda_backend.h"

namespace tessera {
namespace sm90 {

struct Maps {
  CUtensorMap q, k, v;  // [B, L, H, D] as 4-D (D, H, L, B); boxes 64 (q) / BC (k, v) rows x 64 channels
};

// Launches one instantiation; grid = (query tiles of 64 * NCWG rows, heads, batch).
template <class T, int D, int NCWG, int BC, int STAGES>
void launch_wgmma(const Maps& m, const AttnParams& p, dim3 grid, cudaStream_t stream) {
  using L = Layout<D, NCWG, BC, STAGES>;
  auto kern = attn_wgmma_kernel<T, D, NCWG, BC, STAGES>;
  TESSERA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(L::SMEM)));
  kern<<<grid, (NCWG + 1) * 128, L::SMEM, stream>>>(m.q, m.k, m.v, p);
  TESSERA_CUDA_CHECK_LAUNCH("attention (sm90 wgmma kernel)");
}

// Consumer warpgroups at head dim D (64 or 128): the block has 64 query rows per consumer.
// 3 at D = 64 measured faster than 2 (NOTES.md, "Hopper"); at D = 128 a consumer thread
// holds 64 S, 64 O and 32 P registers, more than the 160 each of 3 consumers would get.
constexpr int consumer_warpgroups(int D) { return D == 64 ? 3 : 2; }

// Key tile (rows of the K / V boxes) and stages of the K / V ring.
constexpr int kBC = 128;
constexpr int kStages = 2;

// Per-dtype launch of the instantiation for head dim D, 64 or 128 (attention_sm90_bf16.cu /
// _f16.cu).
void launch_wgmma_bf16(int D, const Maps& m, const AttnParams& p, dim3 grid, cudaStream_t stream);
void launch_wgmma_f16(int D, const Maps& m, const AttnParams& p, dim3 grid, cudaStream_t stream);

}  // namespace sm90
}  // namespace tessera
