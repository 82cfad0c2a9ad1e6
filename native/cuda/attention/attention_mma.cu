// The bf16 / f16 attention kernel on tensor cores (mma.sync m16n8k16, fp32 accumulation,
// online softmax in fp32); the planner and the semantics are attention.cu's. A block owns a
// tile of 128 (or 64) query rows of one (batch, head) - 8 (or 4) warps x 16 rows - and walks
// the key tiles of those queries' group, double-buffered with cp.async (one buffer when no
// tile has more than one key tile). Head dims are padded (with zeros) to the next of
// 32/64/96/128/192/256.
//
// Per key tile: [issue cp.async of the NEXT K/V tile into the other buffer] [wait for
// this tile] [barrier] [S = Q K^T, masks, online softmax, O += P V] [barrier]. RoPE is not
// applied here: with rope on, the dispatcher has rotated Q and K once (attention_rope.cu).
#include <string>

#include "cuda/attention/attention_kernels.h"
#include "cuda/common/dtype.cuh"
#include "cuda/gemm/mma.cuh"
#include "cuda/runtime/cuda_backend.h"

namespace tessera {
namespace attn {
namespace {

// A block has NW warps of 16 query rows each (BR = 16 * NW rows).
constexpr int kPadA = 8;      // shared row padding (elements): conflict-free ldmatrix

// NBUF = 2: the next key tile loads while this one is used. NBUF = 1 when every tile of
// the call has at most BC keys (small groups packed to a tile, short key sets): the second
// buffer would never be filled, and halving the shared memory doubles the resident blocks.
template <int DP, int BC, int NW, int NBUF = 2>
struct TcLayout {
  static constexpr int BR = 16 * NW;
  static constexpr int LD = DP + kPadA;
  static constexpr size_t Q_BYTES = static_cast<size_t>(BR) * LD * 2;
  static constexpr size_t KV_BYTES = static_cast<size_t>(BC) * LD * 2;  // one buffer of K or V
  static constexpr size_t OFF_K = Q_BYTES;
  static constexpr size_t OFF_V = OFF_K + NBUF * KV_BYTES;
  static constexpr size_t OFF_TOK = OFF_V + NBUF * KV_BYTES;  // ints: query tokens and groups, key ones [2][BC]
  static constexpr size_t TOK_INTS = 2 * BR + 4 * BC;
  static constexpr size_t BYTES = OFF_TOK + TOK_INTS * 4;
};

// 8 channels [d0, d0+8) of one token row (global, `row` = start of the row), zero beyond D.
template <class T>
__device__ __forceinline__ void load_words(uint32_t (&w)[4], const T* row, int d0, int D, bool vec) {
  if (vec) {  // D % 8 == 0 and aligned: the chunk is entirely inside the row
    const uint4 v = *reinterpret_cast<const uint4*>(row + d0);
    w[0] = v.x; w[1] = v.y; w[2] = v.z; w[3] = v.w;
  } else {
    const uint16_t* s16 = reinterpret_cast<const uint16_t*>(row) + d0;
    const int left = D - d0;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const uint32_t lo = (2 * e < left) ? s16[2 * e] : 0u;
      const uint32_t hi = (2 * e + 1 < left) ? s16[2 * e + 1] : 0u;
      w[e] = lo | (hi << 16);
    }
  }
}

__device__ __forceinline__ void store_zero16(void* dst) { *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u); }

template <class T, int DP, int BC, int NW, int NBUF>
__global__ void __launch_bounds__(NW * 32, NBUF == 1 ? 4 : 1) attn_tc_kernel(AttnParams p) {
  using L = TcLayout<DP, BC, NW, NBUF>;
  constexpr int kBR = L::BR;
  constexpr int kThreads = NW * 32;
  constexpr int LD = L::LD;
  constexpr int NT_S = BC / 8;   // n-tiles of S per warp
  constexpr int NT_O = DP / 8;   // n-tiles of O per warp
  constexpr int CH = DP / 8;     // 16-byte chunks per row
  static_assert(DP % 16 == 0 && BC % 16 == 0, "tile shape");
  static_assert(BC * CH >= kThreads, "every thread issues at least one chunk");

  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* Qs = reinterpret_cast<T*>(smem_raw);
  T* Ks = reinterpret_cast<T*>(smem_raw + L::OFF_K);  // [NBUF][BC][LD]
  T* Vs = reinterpret_cast<T*>(smem_raw + L::OFF_V);  // [NBUF][BC][LD]
  int* qtok = reinterpret_cast<int*>(smem_raw + L::OFF_TOK);
  int* qlg = qtok + kBR;
  int* ktok = qlg + kBR;  // [2][BC]
  int* klg = ktok + 2 * BC;

  const int tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const int lq8 = lane >> 3, lr8 = lane & 7;
  const int tile = blockIdx.x;
  const int h = blockIdx.y;
  const int b = blockIdx.z;
  const int D = p.dim;
  const bool vec = p.vec != 0;
  const int g0 = (tile / p.tiles_per_group) * p.per_tile;

  const int key_len = p.key_lengths ? max(0, min(p.key_lengths[b], p.lk)) : p.lk;
  const int64_t row_stride = static_cast<int64_t>(p.heads) * D;  // elements between tokens
  const T* qbase = static_cast<const T*>(p.q) + static_cast<int64_t>(b) * p.lq * row_stride + static_cast<int64_t>(h) * D;
  const T* kbase = static_cast<const T*>(p.k) + static_cast<int64_t>(b) * p.lk * row_stride + static_cast<int64_t>(h) * D;
  const T* vbase = static_cast<const T*>(p.v) + static_cast<int64_t>(b) * p.lk * row_stride + static_cast<int64_t>(h) * D;
  T* obase = static_cast<T*>(p.o) + static_cast<int64_t>(b) * p.lq * row_stride + static_cast<int64_t>(h) * D;
  const float* bias = p.bias ? p.bias + static_cast<int64_t>(b) * p.bias_batch_stride +
                                   static_cast<int64_t>(h) * p.lq * p.lk
                             : nullptr;
  // No per-element mask work is needed on a tile whose keys are all valid, when there is
  // no bias and one group per tile.
  const bool maskless_ok = bias == nullptr && p.per_tile == 1;

  const int nk = tile_keys(p, tile, key_len);

  // Copies key tile c0 into buffer buf; returns whether every key this thread touched is valid.
  auto issue = [&](int buf, int c0) -> bool {
    bool ok = true;
    T* kb = Ks + buf * (BC * LD);
    T* vb = Vs + buf * (BC * LD);
    for (int idx = tid; idx < BC * CH; idx += kThreads) {
      const int c = idx / CH, d0 = (idx % CH) * 8;
      const int cc = c0 + c;
      int lg = 0;
      const int tok = cc < nk ? key_token(p, g0, cc, key_len, &lg) : -1;
      ok = ok && tok >= 0;
      if (d0 == 0) {
        ktok[buf * BC + c] = tok;
        klg[buf * BC + c] = lg;
      }
      T* kd = kb + c * LD + d0;
      T* vd = vb + c * LD + d0;
      if (tok < 0 || d0 >= D) {
        store_zero16(kd);
        store_zero16(vd);
      } else {
        const int64_t off = tok * row_stride;
        if (vec) {
          tc::cp_async16(kd, kbase + off + d0, 16);
          tc::cp_async16(vd, vbase + off + d0, 16);
        } else {
          uint32_t w[4];
          load_words<T>(w, kbase + off, d0, D, false);
          store_words(kd, w);
          load_words<T>(w, vbase + off, d0, D, false);
          store_words(vd, w);
        }
      }
    }
    return ok;
  };

  // With 16-byte accesses the Q tile is copied asynchronously in the same group as key tile 0
  // (the first loop iteration waits for both); otherwise it is loaded below.
  const bool q_async = vec;
  if (q_async) {
    for (int idx = tid; idx < kBR * CH; idx += kThreads) {
      const int r = idx / CH, d0 = (idx % CH) * 8;
      int lg;
      const int tok = query_token(p, tile, r, kBR, &lg);
      T* dst = Qs + r * LD + d0;
      if (tok < 0 || d0 >= D) store_zero16(dst);
      else tc::cp_async16(dst, qbase + static_cast<int64_t>(tok) * row_stride + d0, 16);
    }
  }
  // Key tile 0 is in flight while the row tokens are set up (and Q is loaded).
  bool ok_pending = nk > 0 ? issue(0, 0) : true;
  tc::cp_async_commit();

  // ---- per-block setup: row tokens ----
  if (tid < kBR) {
    int lg;
    qtok[tid] = query_token(p, tile, tid, kBR, &lg);
    qlg[tid] = lg;
  }
  __syncthreads();

  // ---- Q tile, synchronous (scalar accesses) ----
  for (int idx = tid; idx < (q_async ? 0 : kBR * CH); idx += kThreads) {
    const int r = idx / CH, d0 = (idx % CH) * 8;
    T* dst = Qs + r * LD + d0;
    const int tok = qtok[r];
    if (tok < 0 || d0 >= D) {
      store_zero16(dst);
    } else {
      uint32_t w[4];
      load_words<T>(w, qbase + tok * row_stride, d0, D, vec);
      store_words(dst, w);
    }
  }

  // This thread's two rows within the tile, their tokens and local groups.
  const int row0 = warp * 16 + g, row1 = row0 + 8;
  float m_run[2] = {-INFINITY, -INFINITY};
  float l_run[2] = {0.f, 0.f};
  float o_acc[NT_O][4];
#pragma unroll
  for (int j = 0; j < NT_O; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) o_acc[j][e] = 0.f;

  __syncthreads();  // Q tile, qtok complete; nothing reads K/V yet
  const int qt[2] = {qtok[row0], qtok[row1]};
  const int ql[2] = {qlg[row0], qlg[row1]};

  int buf = 0;
  for (int c0 = 0; c0 < nk; c0 += BC) {
    const bool ok_this = ok_pending;
    if (NBUF > 1 && c0 + BC < nk) ok_pending = issue(buf ^ 1, c0 + BC);
    tc::cp_async_commit();
    tc::cp_async_wait<1>();
    const bool maskless = __syncthreads_and(ok_this) && maskless_ok;
    const T* kb = Ks + buf * (BC * LD);
    const T* vb = Vs + buf * (BC * LD);
    const int* kt_s = ktok + buf * BC;
    const int* kl_s = klg + buf * BC;

    // ---- S = Q K^T (this warp: 16 rows x BC keys) ----
    float s[NT_S][4];
#pragma unroll
    for (int j = 0; j < NT_S; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < DP; kk += 16) {
      uint32_t a[4];
      tc::ldmatrix_x4(a, Qs + (warp * 16 + (lane & 15)) * LD + kk + (lane >> 4) * 8);
#pragma unroll
      for (int j = 0; j < NT_S; j += 2) {
        uint32_t bb[4];
        tc::ldmatrix_x4(bb, kb + (j * 8 + lr8 + (lq8 >> 1) * 8) * LD + kk + (lq8 & 1) * 8);
        tc::mma16816<T>(s[j], a, bb[0], bb[1]);
        tc::mma16816<T>(s[j + 1], a, bb[2], bb[3]);
      }
    }

    // ---- scale, bias, masks; online softmax (log2 domain) ----
    float mx[2] = {-INFINITY, -INFINITY};
    if (maskless) {
#pragma unroll
      for (int j = 0; j < NT_S; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[j][e] *= p.scale_log2;
          mx[e >> 1] = fmaxf(mx[e >> 1], s[j][e]);
        }
    } else {
#pragma unroll
      for (int j = 0; j < NT_S; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int hr = e >> 1;
          const int c = j * 8 + 2 * t4 + (e & 1);
          const int kt = kt_s[c];
          float x = -INFINITY;
          if (kt >= 0 && qt[hr] >= 0 && kl_s[c] == ql[hr]) {
            x = s[j][e] * p.scale_log2;
            if (bias) x = fmaf(bias[static_cast<int64_t>(qt[hr]) * p.lk + kt], kLog2e, x);
          }
          s[j][e] = x;
          mx[hr] = fmaxf(mx[hr], x);
        }
      }
    }
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 1));
      mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 2));
    }
    float corr[2], m_use[2];
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const float m_new = fmaxf(m_run[hr], mx[hr]);
      m_use[hr] = m_new == -INFINITY ? 0.f : m_new;
      corr[hr] = exp2f(m_run[hr] - m_use[hr]);  // 0 when m_run is -inf
      m_run[hr] = m_new;
    }
    float rs[2] = {0.f, 0.f};
#pragma unroll
    for (int j = 0; j < NT_S; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int hr = e >> 1;
        const float pv = exp2f(s[j][e] - m_use[hr]);
        s[j][e] = pv;
        rs[hr] += pv;
      }
    }
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) l_run[hr] = l_run[hr] * corr[hr] + rs[hr];  // per-thread partial
#pragma unroll
    for (int j = 0; j < NT_O; ++j) {
      o_acc[j][0] *= corr[0];
      o_acc[j][1] *= corr[0];
      o_acc[j][2] *= corr[1];
      o_acc[j][3] *= corr[1];
    }

    // ---- O += P V ----
#pragma unroll
    for (int kc = 0; kc < BC / 16; ++kc) {
      uint32_t a[4];
      a[0] = tc::pack2<T>(s[2 * kc][0], s[2 * kc][1]);
      a[1] = tc::pack2<T>(s[2 * kc][2], s[2 * kc][3]);
      a[2] = tc::pack2<T>(s[2 * kc + 1][0], s[2 * kc + 1][1]);
      a[3] = tc::pack2<T>(s[2 * kc + 1][2], s[2 * kc + 1][3]);
#pragma unroll
      for (int j = 0; j < NT_O; j += 2) {
        uint32_t bb[4];
        tc::ldmatrix_x4_trans(bb, vb + (kc * 16 + lr8 + (lq8 & 1) * 8) * LD + j * 8 + (lq8 >> 1) * 8);
        tc::mma16816<T>(o_acc[j], a, bb[0], bb[1]);
        tc::mma16816<T>(o_acc[j + 1], a, bb[2], bb[3]);
      }
    }
    __syncthreads();  // this buffer is refilled by the next iteration's issue
    if (NBUF > 1) {
      buf ^= 1;
    } else if (c0 + BC < nk) {  // one buffer: the host plans one key tile; more load one by one
      ok_pending = issue(0, c0 + BC);
      tc::cp_async_commit();
    }
  }
  tc::cp_async_wait<0>();

  // ---- normalise; stage this warp's 16 rows in its own Q rows; write out ----
  __syncthreads();  // (when no key tile ran, other threads may still be writing the Q tile)
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    l_run[hr] += __shfl_xor_sync(0xffffffffu, l_run[hr], 1);
    l_run[hr] += __shfl_xor_sync(0xffffffffu, l_run[hr], 2);
  }
  const float inv0 = l_run[0] > 0.f ? 1.f / l_run[0] : 0.f;
  const float inv1 = l_run[1] > 0.f ? 1.f / l_run[1] : 0.f;
#pragma unroll
  for (int j = 0; j < NT_O; ++j) {
    const int d = j * 8 + 2 * t4;
    *reinterpret_cast<uint32_t*>(Qs + row0 * LD + d) = tc::pack2<T>(o_acc[j][0] * inv0, o_acc[j][1] * inv0);
    *reinterpret_cast<uint32_t*>(Qs + row1 * LD + d) = tc::pack2<T>(o_acc[j][2] * inv1, o_acc[j][3] * inv1);
  }
  __syncwarp();
  for (int idx = lane; idx < 16 * CH; idx += 32) {
    const int r = warp * 16 + idx / CH, d0 = (idx % CH) * 8;
    const int tok = qtok[r];
    if (tok < 0 || d0 >= D) continue;
    const T* src = Qs + r * LD + d0;
    T* dst = obase + tok * row_stride + d0;
    if (vec) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
      const int n = min(8, D - d0);
      for (int e = 0; e < n; ++e) dst[e] = src[e];
    }
  }
}

// The opt-in maximum of shared memory for one block on the current device.
int smem_per_block() {
  int dev = 0, bytes = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
    cudaGetLastError();
    bytes = 99 * 1024;
  }
  return bytes;
}

template <class T, int DP, int BC, int NW, int NBUF = 2>
void launch_tc(const AttnParams& p, dim3 grid, cudaStream_t stream) {
  auto kern = attn_tc_kernel<T, DP, BC, NW, NBUF>;
  constexpr size_t smem = TcLayout<DP, BC, NW, NBUF>::BYTES;
  const int limit = smem_per_block();
  if (smem > static_cast<size_t>(limit))
    throw DeviceError("attention: needs " + std::to_string(smem) + " bytes of shared memory per block, the device allows " +
                      std::to_string(limit));
  if (smem > 48 * 1024)
    TESSERA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  kern<<<grid, NW * 32, smem, stream>>>(p);
  TESSERA_CUDA_CHECK_LAUNCH("attention (tensor-core kernel)");
}

template <class T>
void launch_tc_dim(const AttnParams& p, const MmaPlan& plan, dim3 grid, cudaStream_t stream) {
  const int D = p.dim;
  if (plan.kv_buffers == 1 && plan.warps == 4 && D <= 128) {
    if (D <= 32) launch_tc<T, 32, 64, 4, 1>(p, grid, stream);
    else if (D <= 64) launch_tc<T, 64, 64, 4, 1>(p, grid, stream);
    else if (D <= 96) launch_tc<T, 96, 64, 4, 1>(p, grid, stream);
    else launch_tc<T, 128, 64, 4, 1>(p, grid, stream);
  } else if (plan.warps == 8 && D <= 128) {
    if (D <= 32) launch_tc<T, 32, 64, 8>(p, grid, stream);
    else if (D <= 64) launch_tc<T, 64, 64, 8>(p, grid, stream);
    else if (D <= 96) launch_tc<T, 96, 64, 8>(p, grid, stream);
    else launch_tc<T, 128, 64, 8>(p, grid, stream);
  } else {
    if (D <= 32) launch_tc<T, 32, 64, 4>(p, grid, stream);
    else if (D <= 64) launch_tc<T, 64, 64, 4>(p, grid, stream);
    else if (D <= 96) launch_tc<T, 96, 64, 4>(p, grid, stream);
    else if (D <= 128) launch_tc<T, 128, 64, 4>(p, grid, stream);
    else if (D <= 192) launch_tc<T, 192, 32, 4>(p, grid, stream);
    else launch_tc<T, 256, 32, 4>(p, grid, stream);
  }
}

}  // namespace

void launch_mma(const AttnParams& p, const MmaPlan& plan, DType dtype, dim3 grid, cudaStream_t stream) {
  if (dtype == DType::BF16) launch_tc_dim<__nv_bfloat16>(p, plan, grid, stream);
  else launch_tc_dim<__half>(p, plan, grid, stream);
}

}  // namespace attn
}  // namespace tessera
