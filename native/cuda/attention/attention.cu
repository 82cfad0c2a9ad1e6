// CUDA kernel "attention" (semantics: tessera/kernels/attention.h).
//
//   bf16 / f16: flash-attention forward on tensor cores (mma.sync m16n8k16, fp32
//               accumulation, online softmax in fp32). A block owns a tile of 128 (or 64)
//               query rows of one (batch, head) - 8 (or 4) warps x 16 rows - and walks the
//               key tiles of those queries' group, double-buffered with cp.async. Q and K
//               are RoPE-rotated in fp32 in shared memory, right after they land. Head
//               dims are padded (with zeros) to the next of 32/64/96/128/192/256.
//   f32:        the same tiling on plain fp32 FMA (16 query rows, 32-key tiles), D <= 256.
//
// Token grouping is index arithmetic (see NOTES.md): a "group" is a set of query tokens
// that share one key set - the whole sequence (full), one frame (spatial), or one (h, w)
// position across frames (temporal). Group g's m-th token is g * gstride + m * mstride.
// Small groups are packed several to a tile, with a same-group mask on the logits.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "../common/dtype.cuh"
#include "../gemm/mma.cuh"
#include "../runtime/cuda_backend.h"
#include "attention_sm90.h"
#include "tessera/kernels/attention.h"

namespace tessera {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

struct AttnParams {
  const void* q;
  const void* k;
  const void* v;
  void* o;
  int lq, lk, heads, dim;
  float scale_log2;  // scale * log2(e)
  // grouping
  int groups;        // G
  int gsq, gsk;      // tokens per group (queries, keys)
  int gstride, mstride;
  int per_tile;      // P: groups packed in one tile (> 1 only when a group fits in half a tile)
  int tiles_per_group;
  int full;          // key token == key index (lets key_lengths shorten the loop)
  // RoPE
  int rope;
  int grid_h, grid_w;
  int rope_d0, rope_d1, rope_d2;
  int rope_off0, rope_off1, rope_off2;
  float rope_theta;
  int rope_tab;                 // entries of the shared-memory cos/sin table (0 = compute inline)
  int rope_tab_half;            // table holds half2 (cos, sin) instead of float2 (when float2 won't fit)
  int tab_half[3], tab_off[3];  // per axis: pairs, and first table entry
  // masking / bias
  const int32_t* key_lengths;
  const float* bias;
  int64_t bias_batch_stride;
  int vec;  // D % 8 == 0 and q/k/v/o 16-byte aligned: 16-byte global accesses
};

// Query row r of tile t -> token (or -1) and its local group within the tile.
__device__ __forceinline__ int query_token(const AttnParams& p, int tile, int r, int br, int* lg_out) {
  const int g0 = (tile / p.tiles_per_group) * p.per_tile;
  const int sub = tile % p.tiles_per_group;
  const int lg = p.per_tile > 1 ? r / p.gsq : 0;
  const int m = sub * br + r - lg * p.gsq;
  const int g = g0 + lg;
  *lg_out = lg;
  if (lg >= p.per_tile || g >= p.groups || m >= p.gsq) return -1;
  const int64_t tok = static_cast<int64_t>(g) * p.gstride + static_cast<int64_t>(m) * p.mstride;
  return tok < p.lq ? static_cast<int>(tok) : -1;
}

// Number of key indices a tile walks.
__device__ __forceinline__ int tile_keys(const AttnParams& p, int tile, int key_len) {
  const int g0 = (tile / p.tiles_per_group) * p.per_tile;
  const int ng = min(p.per_tile, p.groups - g0);
  int nk = ng * p.gsk;
  if (p.full) nk = min(nk, key_len);
  return max(nk, 0);
}

// Key index c of the tile whose first group is g0 -> token (or -1 when out of range or
// masked by key_lengths).
__device__ __forceinline__ int key_token(const AttnParams& p, int g0, int c, int key_len, int* lg_out) {
  const int lg = p.per_tile > 1 ? c / p.gsk : 0;
  const int m = c - lg * p.gsk;
  const int g = g0 + lg;
  *lg_out = lg;
  if (g >= p.groups || m >= p.gsk) return -1;
  const int64_t tok = static_cast<int64_t>(g) * p.gstride + static_cast<int64_t>(m) * p.mstride;
  return (tok < p.lk && tok < key_len) ? static_cast<int>(tok) : -1;
}

// RoPE table: per channel pair, the axis (0 = frame, 1 = height, 2 = width, 3 = none) and
// inverse frequency theta^(-2i / d_axis).
__device__ __forceinline__ void rope_pair_info(const AttnParams& p, int pair, int* axis, float* inv_freq) {
  const int d = 2 * pair;
  int ax, i, dax;
  if (d < p.rope_d0) { ax = 0; i = pair; dax = p.rope_d0; }
  else if (d < p.rope_d0 + p.rope_d1) { ax = 1; i = pair - p.rope_d0 / 2; dax = p.rope_d1; }
  else if (d < p.rope_d0 + p.rope_d1 + p.rope_d2) { ax = 2; i = pair - (p.rope_d0 + p.rope_d1) / 2; dax = p.rope_d2; }
  else { ax = 3; i = 0; dax = 1; }
  *axis = ax;
  *inv_freq = ax == 3 ? 0.f : powf(p.rope_theta, -2.f * static_cast<float>(i) / static_cast<float>(dax));
}

// sin/cos of an angle of any size: reduce to [-pi, pi] (two-part 2*pi), then the fast
// intrinsic (abs error ~2^-21 there).
__device__ __forceinline__ void sincos_reduced(float a, float* s, float* c) {
  const float k = rintf(a * 0.15915494309189535f);
  float r = fmaf(-k, 6.28318548202514648f, a);
  r = fmaf(-k, -1.7484556e-7f, r);
  __sincosf(r, s, c);
}

struct RopePos {
  float f, h, w;
};

__device__ __forceinline__ RopePos rope_pos(const AttnParams& p, int tok) {
  const int hw = p.grid_h * p.grid_w;
  const int f = tok / hw;
  const int rem = tok - f * hw;
  const int hh = rem / p.grid_w;
  const int ww = rem - hh * p.grid_w;
  return RopePos{static_cast<float>(f + p.rope_off0), static_cast<float>(hh + p.rope_off1),
                 static_cast<float>(ww + p.rope_off2)};
}

// Rotates the pair (x0, x1) of channel pair `pair` at position `pos`.
__device__ __forceinline__ void rope_rotate(float& x0, float& x1, const RopePos& pos, int axis, float inv_freq) {
  if (axis == 3) return;
  const float pv = axis == 0 ? pos.f : (axis == 1 ? pos.h : pos.w);
  float s, c;
  sincos_reduced(pv * inv_freq, &s, &c);
  const float y0 = x0 * c - x1 * s;
  const float y1 = x0 * s + x1 * c;
  x0 = y0;
  x1 = y1;
}

// =====================================================================================
// Tensor-core kernel (bf16 / f16)
// =====================================================================================
//
// Per key tile: [issue cp.async of the NEXT K/V tile into the other buffer] [wait for
// this tile] [barrier] [RoPE-rotate this K tile in place] [barrier] [S = Q K^T, masks,
// online softmax, O += P V] [barrier]. RoPE cos/sin come from a per-block shared table
// indexed by (axis, coordinate, pair) when it fits, else are computed inline.

constexpr int kWarpsSmallD = 8;  // warps per block for D <= 128 (measured faster than 4 on H100)

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
  static constexpr size_t OFF_INVD = OFF_V + NBUF * KV_BYTES;              // double[DP/2]
  static constexpr size_t OFF_PAIR = OFF_INVD + (DP / 2) * sizeof(double);  // 3 int + 1 float [DP/2]
  static constexpr size_t OFF_TOK = OFF_PAIR + (DP / 2) * 16;               // ints
  static constexpr size_t TOK_INTS = 2 * BR + 10 * BC;
  static constexpr size_t OFF_TAB = (OFF_TOK + TOK_INTS * 4 + 15) / 16 * 16;  // float2[rope_tab]
  static size_t bytes(int tab_entries, int entry_bytes) {
    return OFF_TAB + static_cast<size_t>(tab_entries) * entry_bytes;
  }
};

struct Coord {
  int f, h, w;
};

__device__ __forceinline__ Coord token_coord(const AttnParams& p, int tok) {
  const int hw = p.grid_h * p.grid_w;
  const int f = tok / hw;
  const int rem = tok - f * hw;
  const int hh = rem / p.grid_w;
  return Coord{f, hh, rem - hh * p.grid_w};
}

// Shared per-pair RoPE data (see TcLayout).
struct PairInfo {
  const int* axis;     // 0 frame, 1 height, 2 width, 3 not rotated
  const int* base;     // table entry of coordinate 0
  const int* stride;   // table entries per coordinate step
  const float* invf;   // inverse frequency (inline path)
  const float2* tab;   // cos, sin
};

// RoPE data of the 4 channel pairs of one 8-channel chunk, in registers.
struct ChunkPairs {
  int ax[4];      // 0 frame, 1 height, 2 width, 3 not rotated
  int base[4];    // table entry of coordinate 0
  int stride[4];  // table entries per coordinate step
};

__device__ __forceinline__ ChunkPairs chunk_pairs(int d0, const PairInfo& pi) {
  ChunkPairs c;
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int pair = d0 / 2 + e;
    c.ax[e] = pi.axis[pair];
    c.base[e] = pi.base[pair];
    c.stride[e] = pi.stride[pair];
  }
  return c;
}

// Rotates the 4 channel pairs packed in w (channels d0 .. d0+7) of a token at `co`.
template <class T>
__device__ __forceinline__ void rope_words(uint32_t (&w)[4], int d0, const Coord& co, const AttnParams& p,
                                           const PairInfo& pi, const ChunkPairs& cp) {
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int ax = cp.ax[e];
    if (ax == 3) continue;
    const int coord = ax == 0 ? co.f : (ax == 1 ? co.h : co.w);
    float sn, cs;
    if (p.rope_tab) {
      const int idx = cp.base[e] + coord * cp.stride[e];
      if (p.rope_tab_half) {
        const float2 t = __half22float2(reinterpret_cast<const __half2*>(pi.tab)[idx]);
        cs = t.x;
        sn = t.y;
      } else {
        const float2 t = pi.tab[idx];
        cs = t.x;
        sn = t.y;
      }
    } else {
      const int off = ax == 0 ? p.rope_off0 : (ax == 1 ? p.rope_off1 : p.rope_off2);
      sincos_reduced(static_cast<float>(coord + off) * pi.invf[d0 / 2 + e], &sn, &cs);
    }
    const float2 x = tc::unpack2<T>(w[e]);
    w[e] = tc::pack2<T>(x.x * cs - x.y * sn, x.x * sn + x.y * cs);
  }
}

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

__device__ __forceinline__ void store_words(void* dst, const uint32_t (&w)[4]) {
  *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
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
  double* invf_d = reinterpret_cast<double*>(smem_raw + L::OFF_INVD);
  int* pair_axis = reinterpret_cast<int*>(smem_raw + L::OFF_PAIR);
  int* pair_base = pair_axis + DP / 2;
  int* pair_stride = pair_base + DP / 2;
  float* pair_invf = reinterpret_cast<float*>(pair_stride + DP / 2);
  int* qtok = reinterpret_cast<int*>(smem_raw + L::OFF_TOK);
  int* qlg = qtok + kBR;
  int* ktok = qlg + kBR;  // [2][BC]
  int* klg = ktok + 2 * BC;
  int* kcf = klg + 2 * BC;
  int* kch = kcf + 2 * BC;
  int* kcw = kch + 2 * BC;
  float2* tab = reinterpret_cast<float2*>(smem_raw + L::OFF_TAB);
  const PairInfo pi{pair_axis, pair_base, pair_stride, pair_invf, tab};

  const int tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const int lq8 = lane >> 3, lr8 = lane & 7;
  const int tile = blockIdx.x;
  const int h = blockIdx.y;
  const int b = blockIdx.z;
  const int D = p.dim;
  const bool rope = p.rope != 0;
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

  // Copies key tile c0 (raw; RoPE comes later, in place) into buffer buf; returns whether
  // every key this thread touched is valid.
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
        if (rope && tok >= 0) {
          const Coord co = token_coord(p, tok);
          kcf[buf * BC + c] = co.f;
          kch[buf * BC + c] = co.h;
          kcw[buf * BC + c] = co.w;
        }
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

  // Without fused RoPE, the Q tile is copied asynchronously in the same group as key tile 0
  // (the first loop iteration waits for both); with it, Q is loaded and rotated below.
  const bool q_async = vec && !rope;
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
  // Key tile 0 is in flight while the RoPE tables are built (and Q is loaded).
  bool ok_pending = nk > 0 ? issue(0, 0) : true;
  tc::cp_async_commit();

  // ---- per-block setup: row tokens, RoPE tables ----
  if (tid < kBR) {
    int lg;
    qtok[tid] = query_token(p, tile, tid, kBR, &lg);
    qlg[tid] = lg;
  }
  if (rope) {
    for (int i = tid; i < DP / 2; i += kThreads) {
      const int d = 2 * i;
      int ax, ia, dax;
      if (d < p.rope_d0) { ax = 0; ia = i; dax = p.rope_d0; }
      else if (d < p.rope_d0 + p.rope_d1) { ax = 1; ia = i - p.rope_d0 / 2; dax = p.rope_d1; }
      else if (d < p.rope_d0 + p.rope_d1 + p.rope_d2) { ax = 2; ia = i - (p.rope_d0 + p.rope_d1) / 2; dax = p.rope_d2; }
      else { ax = 3; ia = 0; dax = 1; }
      pair_axis[i] = ax;
      if (ax == 3) {
        pair_base[i] = 0;
        pair_stride[i] = 0;
        pair_invf[i] = 0.f;
        invf_d[i] = 0.0;
      } else {
        const double f = pow(static_cast<double>(p.rope_theta), -2.0 * ia / static_cast<double>(dax));
        invf_d[i] = f;
        pair_invf[i] = static_cast<float>(f);
        pair_base[i] = p.tab_off[ax] + ia;
        pair_stride[i] = p.tab_half[ax];
      }
    }
    if (p.rope_tab) {
      __syncthreads();
      for (int e = tid; e < p.rope_tab; e += kThreads) {
        const int ax = e < p.tab_off[1] ? 0 : (e < p.tab_off[2] ? 1 : 2);
        const int local = e - p.tab_off[ax];
        const int coord = local / p.tab_half[ax];
        const int ia = local - coord * p.tab_half[ax];
        const int first = ax == 0 ? 0 : (ax == 1 ? p.rope_d0 : p.rope_d0 + p.rope_d1);
        const int off = ax == 0 ? p.rope_off0 : (ax == 1 ? p.rope_off1 : p.rope_off2);
        // Angle in double (positions times low frequencies reach large angles), as a
        // multiple of pi reduced to [-1, 1] before the single-precision sincospi.
        const double half_turns = static_cast<double>(coord + off) * invf_d[first / 2 + ia] * 0.3183098861837907;
        const float r = static_cast<float>(half_turns - 2.0 * rint(0.5 * half_turns));
        float sn, cs;
        sincospif(r, &sn, &cs);
        if (p.rope_tab_half) reinterpret_cast<__half2*>(tab)[e] = __floats2half2_rn(cs, sn);
        else tab[e] = make_float2(cs, sn);
      }
    }
  }
  __syncthreads();
  // When the chunk loops below give every thread one fixed channel chunk, its pairs' RoPE
  // data stays in registers.
  constexpr bool kFixedChunk = kThreads % CH == 0;
  ChunkPairs my_pairs{};
  if (kFixedChunk && rope) my_pairs = chunk_pairs((tid % CH) * 8, pi);


  // ---- Q tile (rotated), synchronous ----
  for (int idx = tid; idx < (q_async ? 0 : kBR * CH); idx += kThreads) {
    const int r = idx / CH, d0 = (idx % CH) * 8;
    T* dst = Qs + r * LD + d0;
    const int tok = qtok[r];
    if (tok < 0 || d0 >= D) {
      store_zero16(dst);
    } else {
      uint32_t w[4];
      load_words<T>(w, qbase + tok * row_stride, d0, D, vec);
      if (rope) rope_words<T>(w, d0, token_coord(p, tok), p, pi, kFixedChunk ? my_pairs : chunk_pairs(d0, pi));
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

    if (rope) {  // rotate this K tile in place
      T* kr = Ks + buf * (BC * LD);
      for (int idx = tid; idx < BC * CH; idx += kThreads) {
        const int c = idx / CH, d0 = (idx % CH) * 8;
        if (kt_s[c] < 0 || d0 >= D) continue;
        uint4 raw = *reinterpret_cast<const uint4*>(kr + c * LD + d0);
        uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
        rope_words<T>(w, d0, Coord{kcf[buf * BC + c], kch[buf * BC + c], kcw[buf * BC + c]}, p, pi,
                      kFixedChunk ? my_pairs : chunk_pairs(d0, pi));
        store_words(kr + c * LD + d0, w);
      }
      __syncthreads();
    }

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

// =====================================================================================
// fp32 kernel (SIMT): 16 query rows x 32-key tiles, 128 threads, any D <= 256.
// =====================================================================================

constexpr int kBRf = 16;
constexpr int kBCf = 32;

struct F32Smem {
  int D, LDK;
  size_t q, k, v, o, s, meta, total;
  explicit F32Smem(int d) : D(d), LDK(d + 1) {
    q = static_cast<size_t>(kBRf) * D * 4;
    k = static_cast<size_t>(kBCf) * LDK * 4;
    v = static_cast<size_t>(kBCf) * D * 4;
    o = static_cast<size_t>(kBRf) * D * 4;
    s = static_cast<size_t>(kBRf) * kBCf * 4;
    meta = (3 * kBRf) * 4 + (2 * kBRf + 2 * kBCf) * 4 + static_cast<size_t>((D + 1) / 2) * 8;
    total = q + k + v + o + s + meta;
  }
};

__global__ void __launch_bounds__(128) attn_f32_kernel(AttnParams p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int D = p.dim;
  const int LDK = D + 1;
  const int DH = (D + 1) / 2;
  float* Qs = reinterpret_cast<float*>(smem_raw);
  float* Ks = Qs + kBRf * D;
  float* Vs = Ks + kBCf * LDK;
  float* Os = Vs + kBCf * D;
  float* Ss = Os + kBRf * D;
  float* m_row = Ss + kBRf * kBCf;
  float* l_row = m_row + kBRf;
  float* c_row = l_row + kBRf;
  int* qtok = reinterpret_cast<int*>(c_row + kBRf);
  int* qlg = qtok + kBRf;
  int* ktok = qlg + kBRf;
  int* klg = ktok + kBCf;
  float* inv_freq = reinterpret_cast<float*>(klg + kBCf);
  int* axis = reinterpret_cast<int*>(inv_freq + DH);

  const int tid = threadIdx.x;
  const int tile = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const bool rope = p.rope != 0;
  const int g0 = (tile / p.tiles_per_group) * p.per_tile;
  const int key_len = p.key_lengths ? max(0, min(p.key_lengths[b], p.lk)) : p.lk;
  const int64_t row_stride = static_cast<int64_t>(p.heads) * D;
  const float* qbase = static_cast<const float*>(p.q) + static_cast<int64_t>(b) * p.lq * row_stride + static_cast<int64_t>(h) * D;
  const float* kbase = static_cast<const float*>(p.k) + static_cast<int64_t>(b) * p.lk * row_stride + static_cast<int64_t>(h) * D;
  const float* vbase = static_cast<const float*>(p.v) + static_cast<int64_t>(b) * p.lk * row_stride + static_cast<int64_t>(h) * D;
  float* obase = static_cast<float*>(p.o) + static_cast<int64_t>(b) * p.lq * row_stride + static_cast<int64_t>(h) * D;
  const float* bias = p.bias ? p.bias + static_cast<int64_t>(b) * p.bias_batch_stride +
                                   static_cast<int64_t>(h) * p.lq * p.lk
                             : nullptr;

  if (tid < kBRf) {
    int lg;
    qtok[tid] = query_token(p, tile, tid, kBRf, &lg);
    qlg[tid] = lg;
    m_row[tid] = -INFINITY;
    l_row[tid] = 0.f;
  }
  if (rope) {
    for (int i = tid; i < DH; i += 128) {
      int ax;
      float f;
      rope_pair_info(p, i, &ax, &f);
      axis[i] = ax;
      inv_freq[i] = f;
    }
  }
  for (int i = tid; i < kBRf * D; i += 128) Os[i] = 0.f;
  __syncthreads();
  // Q tile, rotated pairwise.
  for (int i = tid; i < kBRf * DH; i += 128) {
    const int r = i / DH, pr = i % DH, d = 2 * pr;
    const int tok = qtok[r];
    float x0 = 0.f, x1 = 0.f;
    if (tok >= 0) {
      const float* src = qbase + tok * row_stride;
      x0 = src[d];
      x1 = d + 1 < D ? src[d + 1] : 0.f;
      if (rope) rope_rotate(x0, x1, rope_pos(p, tok), axis[pr], inv_freq[pr]);
    }
    Qs[r * D + d] = x0;
    if (d + 1 < D) Qs[r * D + d + 1] = x1;
  }

  const int r_s = tid >> 3;   // score row of this thread
  const int c_s = tid & 7;    // first score column (then +8, +16, +24)
  const int nk = tile_keys(p, tile, key_len);
  for (int c0 = 0; c0 < nk; c0 += kBCf) {
    __syncthreads();
    if (tid < kBCf) {
      int lg = 0;
      const int c = c0 + tid;
      ktok[tid] = c < nk ? key_token(p, g0, c, key_len, &lg) : -1;
      klg[tid] = lg;
    }
    __syncthreads();
    for (int i = tid; i < kBCf * DH; i += 128) {
      const int c = i / DH, pr = i % DH, d = 2 * pr;
      const int tok = ktok[c];
      float k0 = 0.f, k1 = 0.f, v0 = 0.f, v1 = 0.f;
      if (tok >= 0) {
        const float* ks = kbase + tok * row_stride;
        const float* vs = vbase + tok * row_stride;
        k0 = ks[d];
        v0 = vs[d];
        if (d + 1 < D) {
          k1 = ks[d + 1];
          v1 = vs[d + 1];
        }
        if (rope) rope_rotate(k0, k1, rope_pos(p, tok), axis[pr], inv_freq[pr]);
      }
      Ks[c * LDK + d] = k0;
      Vs[c * D + d] = v0;
      if (d + 1 < D) {
        Ks[c * LDK + d + 1] = k1;
        Vs[c * D + d + 1] = v1;
      }
    }
    __syncthreads();
    // Scores: row r_s, columns c_s + 8j.
    const int qt = qtok[r_s];
    const int ql = qlg[r_s];
    float x[4];
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int c = c_s + 8 * j;
      const int kt = ktok[c];
      float v = -INFINITY;
      if (kt >= 0 && qt >= 0 && klg[c] == ql) {
        const float* qr = Qs + r_s * D;
        const float* kr = Ks + c * LDK;
        float acc = 0.f;
        for (int d = 0; d < D; ++d) acc = fmaf(qr[d], kr[d], acc);
        v = acc * p.scale_log2;
        if (bias) v = fmaf(bias[static_cast<int64_t>(qt) * p.lk + kt], kLog2e, v);
      }
      x[j] = v;
      mx = fmaxf(mx, v);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
    const float m_old = m_row[r_s];
    const float m_new = fmaxf(m_old, mx);
    const float m_use = m_new == -INFINITY ? 0.f : m_new;
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float pv = exp2f(x[j] - m_use);
      Ss[r_s * kBCf + c_s + 8 * j] = pv;
      sum += pv;
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    sum += __shfl_xor_sync(0xffffffffu, sum, 4);
    __syncwarp();
    if (c_s == 0) {
      const float corr = exp2f(m_old - m_use);
      l_row[r_s] = l_row[r_s] * corr + sum;
      m_row[r_s] = m_new;
      c_row[r_s] = corr;
    }
    __syncthreads();
    // O = O * corr + P V (each thread owns fixed (row, d) entries).
    for (int i = tid; i < kBRf * D; i += 128) {
      const int r = i / D, d = i - r * D;
      const float* pr = Ss + r * kBCf;
      float acc = Os[i] * c_row[r];
#pragma unroll 8
      for (int c = 0; c < kBCf; ++c) acc = fmaf(pr[c], Vs[c * D + d], acc);
      Os[i] = acc;
    }
  }
  __syncthreads();
  for (int i = tid; i < kBRf * D; i += 128) {
    const int r = i / D, d = i - r * D;
    const int tok = qtok[r];
    if (tok < 0) continue;
    const float l = l_row[r];
    obase[tok * row_stride + d] = l > 0.f ? Os[i] / l : 0.f;
  }
}

// =====================================================================================
// RoPE pre-pass (bf16 / f16; the default when rope is on)
// =====================================================================================
//
// Writes RoPE-rotated copies of Q and K (same [B, L, H, D] layout and dtype) so that the
// attention kernel runs with rope off: the fused path re-rotates each K tile in every query
// block that loads it (Lq / BR times per key), this rotates each element once. The math is
// the fused kernel's table path exactly: inverse frequency theta^(-2i/d_axis) in double,
// angle (coord + offset) * invf in double as a multiple of pi reduced to [-1, 1], then the
// single-precision sincospif; (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos) in fp32,
// rounded to T (as the fused path rounds its rotated shared tile to T). Channels past
// dt + dh + dw are copied unchanged. Grid: x = work chunks (grid-stride), y = tensor
// (0 = Q, 1 = K).
struct RopePrepass {
  const void* src[2];
  void* dst[2];
  int64_t rows[2];  // B * L * H rows of D elements
  int len[2];       // L (tokens) of each tensor
};

template <class T>
__global__ void __launch_bounds__(256) rope_prepass_kernel(RopePrepass rp, AttnParams p) {
  __shared__ double invf_d[128];
  __shared__ int pair_ax[128];
  const int D = p.dim;
  const int DH = (D + 1) / 2;  // channel pairs (the last one half-empty when D is odd)
  for (int i = threadIdx.x; i < DH; i += blockDim.x) {
    const int d = 2 * i;
    int ax, ia, dax;
    if (d < p.rope_d0) { ax = 0; ia = i; dax = p.rope_d0; }
    else if (d < p.rope_d0 + p.rope_d1) { ax = 1; ia = i - p.rope_d0 / 2; dax = p.rope_d1; }
    else if (d < p.rope_d0 + p.rope_d1 + p.rope_d2) { ax = 2; ia = i - (p.rope_d0 + p.rope_d1) / 2; dax = p.rope_d2; }
    else { ax = 3; ia = 0; dax = 1; }
    pair_ax[i] = ax;
    invf_d[i] = ax == 3 ? 0.0 : pow(static_cast<double>(p.rope_theta), -2.0 * ia / static_cast<double>(dax));
  }
  __syncthreads();
  const int which = blockIdx.y;
  const T* src = static_cast<const T*>(rp.src[which]);
  T* dst = static_cast<T*>(rp.dst[which]);
  const int64_t rows = rp.rows[which];
  const int L = rp.len[which];
  const int H = p.heads;
  // cos/sin of pair pr at coordinate coord of its axis (the fused kernel's table entry).
  auto cossin = [&](int pr, const Coord& co, float* cs, float* sn) {
    const int ax = pair_ax[pr];
    const int coord = ax == 0 ? co.f : (ax == 1 ? co.h : co.w);
    const int off = ax == 0 ? p.rope_off0 : (ax == 1 ? p.rope_off1 : p.rope_off2);
    const double half_turns = static_cast<double>(coord + off) * invf_d[pr] * 0.3183098861837907;
    const float r = static_cast<float>(half_turns - 2.0 * rint(0.5 * half_turns));
    sincospif(r, sn, cs);
  };
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  if (p.vec) {  // D % 8 == 0, 16-byte aligned: one 8-channel chunk (4 pairs) per step
    const int CH = D / 8;
    const int64_t n = rows * CH;
    for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += stride) {
      const int64_t row = idx / CH;
      const int d0 = static_cast<int>(idx - row * CH) * 8;
      const int tok = static_cast<int>((row / H) % L);
      const Coord co = token_coord(p, tok);
      const uint4 v = *reinterpret_cast<const uint4*>(src + row * D + d0);
      uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int pr = d0 / 2 + e;
        if (pair_ax[pr] == 3) continue;
        float cs, sn;
        cossin(pr, co, &cs, &sn);
        const float2 x = tc::unpack2<T>(w[e]);
        w[e] = tc::pack2<T>(x.x * cs - x.y * sn, x.x * sn + x.y * cs);
      }
      store_words(dst + row * D + d0, w);
    }
  } else {  // one channel pair per step, 16-bit accesses
    const int64_t n = rows * DH;
    const uint16_t* s16 = reinterpret_cast<const uint16_t*>(src);
    uint16_t* d16 = reinterpret_cast<uint16_t*>(dst);
    for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += stride) {
      const int64_t row = idx / DH;
      const int pr = static_cast<int>(idx - row * DH);
      const int d = 2 * pr;
      const int64_t e0 = row * D + d;
      const bool two = d + 1 < D;
      uint16_t lo = s16[e0];
      uint16_t hi = two ? s16[e0 + 1] : static_cast<uint16_t>(0);
      if (pair_ax[pr] != 3) {
        const int tok = static_cast<int>((row / H) % L);
        float cs, sn;
        cossin(pr, token_coord(p, tok), &cs, &sn);
        const float2 x = tc::unpack2<T>(static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16));
        const uint32_t y = tc::pack2<T>(x.x * cs - x.y * sn, x.x * sn + x.y * cs);
        lo = static_cast<uint16_t>(y & 0xffffu);
        hi = static_cast<uint16_t>(y >> 16);
      }
      d16[e0] = lo;
      if (two) d16[e0 + 1] = hi;
    }
  }
}

// TESSERA_CUDA_ATTN_ROPE=fused: rotate inside the attention kernel (the old path, kept for
// comparison); anything else (default): the pre-pass above. Read at every call.
bool rope_fused_requested() {
  const char* e = std::getenv("TESSERA_CUDA_ATTN_ROPE");
  return e && std::string(e) == "fused";
}

// =====================================================================================
// Host side
// =====================================================================================

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

int checked_int(int64_t v, const char* what) {
  if (v < 0 || v > 0x7fffffffLL)
    throw DeviceError(std::string("attention: ") + what + " = " + std::to_string(v) + " is out of range for the CUDA kernel");
  return static_cast<int>(v);
}

// Fills the grouping fields; returns the number of query tiles.
int64_t plan_groups(const AttentionArgs& a, int br, AttnParams* p) {
  const int64_t F = a.grid[0], Hh = a.grid[1], W = a.grid[2];
  int64_t G, gsq, gsk, gstride, mstride;
  switch (a.group) {
    case AttnGroup::Full:
      G = 1; gsq = a.lq; gsk = a.lk; gstride = 0; mstride = 1;
      break;
    case AttnGroup::Spatial:
    case AttnGroup::Temporal: {
      if (F <= 0 || Hh <= 0 || W <= 0 || F * Hh * W != a.lq)
        throw DeviceError("attention: spatial/temporal grouping needs grid [F, H, W] with F*H*W == Lq (grid " +
                          std::to_string(F) + "x" + std::to_string(Hh) + "x" + std::to_string(W) + ", Lq " +
                          std::to_string(a.lq) + ")");
      const int64_t HW = Hh * W;
      if (a.group == AttnGroup::Spatial) { G = F; gsq = HW; gstride = HW; mstride = 1; }
      else { G = HW; gsq = F; gstride = 1; mstride = HW; }
      gsk = gsq;
      break;
    }
    default: throw DeviceError("attention: unknown token grouping");
  }
  p->groups = checked_int(G, "number of groups");
  p->gsq = checked_int(gsq, "group size");
  p->gsk = checked_int(gsk, "key group size");
  p->gstride = checked_int(gstride, "group stride");
  p->mstride = checked_int(mstride, "member stride");
  p->full = a.group == AttnGroup::Full;
  const int64_t per_tile = gsq <= br / 2 ? br / gsq : 1;
  const int64_t tpg = per_tile > 1 ? 1 : (gsq + br - 1) / br;
  p->per_tile = static_cast<int>(per_tile);
  p->tiles_per_group = checked_int(tpg, "tiles per group");
  const int64_t tiles = ((G + per_tile - 1) / per_tile) * tpg;
  return tiles;
}

struct SmemLimits {
  int per_sm = 0;     // shared memory per multiprocessor
  int per_block = 0;  // opt-in maximum for one block
};

SmemLimits smem_limits() {
  int dev = 0;
  SmemLimits l;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&l.per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&l.per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
    cudaGetLastError();
    l.per_sm = 100 * 1024;
    l.per_block = 99 * 1024;
  }
  return l;
}

// -1 = automatic, 0 = inline sin/cos, 1 = float2 table, 2 = half2 table.
int rope_table_override() {
  static const int v = [] {
    const char* e = std::getenv("TESSERA_CUDA_ATTN_ROPE_TABLE");
    if (!e) return -1;
    const std::string s(e);
    return s == "none" ? 0 : (s == "float" ? 1 : (s == "half" ? 2 : -1));
  }();
  return v;
}

template <class T, int DP, int BC, int NW, int NBUF = 2>
void launch_tc(AttnParams p, dim3 grid, cudaStream_t stream) {
  using L = TcLayout<DP, BC, NW, NBUF>;
  auto kern = attn_tc_kernel<T, DP, BC, NW, NBUF>;
  const SmemLimits lim = smem_limits();
  // RoPE cos/sin table: float2 entries when they fit next to the fixed part without costing
  // a resident block per multiprocessor, else half2 entries on the same terms, else sin/cos
  // computed inline. TESSERA_CUDA_ATTN_ROPE_TABLE=float|half|none forces a choice (testing).
  if (p.rope_tab > 0) {
    TESSERA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, lim.per_block));
    int blocks = 1;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kern, NW * 32, L::bytes(0, 0)) != cudaSuccess) {
      cudaGetLastError();
      blocks = 1;
    }
    blocks = std::max(blocks, 1);
    const size_t per_block_share = static_cast<size_t>(std::max(lim.per_sm / blocks - 1024, 0));
    const size_t budget = std::min(per_block_share, static_cast<size_t>(lim.per_block));
    const int force = rope_table_override();
    // Building an entry costs a few inline rotations: skip the table when a block rotates
    // few channel pairs (small groups, e.g. temporal attention over a few frames).
    const int64_t keys_per_block = static_cast<int64_t>(std::min(p.per_tile, p.groups)) * p.gsk;
    const int64_t rotations = (L::BR + keys_per_block) * static_cast<int64_t>(p.dim / 2);
    if (force < 0 && static_cast<int64_t>(p.rope_tab) * 4 > rotations) p.rope_tab = 0;
    if (p.rope_tab == 0) {
      // inline sin/cos
    } else if (force == 1 || (force < 0 && L::bytes(p.rope_tab, 8) <= budget)) {
      p.rope_tab_half = 0;
    } else if (force == 2 || (force < 0 && L::bytes(p.rope_tab, 4) <= budget)) {
      p.rope_tab_half = 1;
    } else {
      p.rope_tab = 0;
    }
    if (L::bytes(p.rope_tab, p.rope_tab_half ? 4 : 8) > static_cast<size_t>(lim.per_block)) p.rope_tab = 0;
  }
  const size_t smem = L::bytes(p.rope_tab, p.rope_tab_half ? 4 : 8);
  if (smem > static_cast<size_t>(lim.per_block))
    throw DeviceError("attention: needs " + std::to_string(smem) + " bytes of shared memory per block, the device allows " +
                      std::to_string(lim.per_block));
  if (smem > 48 * 1024)
    TESSERA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  kern<<<grid, NW * 32, smem, stream>>>(p);
  TESSERA_CUDA_CHECK_LAUNCH("attention (tensor-core kernel)");
}

int env_flag(const char* name) {  // -1 unset, else the integer value
  const char* e = std::getenv(name);
  return e && *e ? std::atoi(e) : -1;
}

// Query rows per block of the tensor-core kernel (the tile plan depends on it): 128 rows
// (8 warps) for D <= 128 when each query sees more than 128 keys, else 64 (4 warps).
// TESSERA_CUDA_ATTN_WARPS=4|8 overrides for D <= 128 (for testing).
int tc_rows(int64_t D, int64_t keys_per_query) {
  static const int force = env_flag("TESSERA_CUDA_ATTN_WARPS");
  if (D > 128) return 64;
  if (force == 4 || force == 8) return 16 * force;
  return keys_per_query > 128 ? 16 * kWarpsSmallD : 64;
}

template <class T>
void launch_tc_dim(const AttnParams& p, int br, dim3 grid, cudaStream_t stream) {
  const int D = p.dim;
  // One key/value buffer when no tile walks more than one key tile (64 keys): temporal
  // grouping over <= 64 frames, spatial over tiny frames, short key sets.
  // TESSERA_CUDA_ATTN_KV_BUFS=2 keeps two (testing).
  static const int kv_bufs = env_flag("TESSERA_CUDA_ATTN_KV_BUFS");
  const int64_t max_tile_keys = static_cast<int64_t>(std::min(p.per_tile, p.groups)) * p.gsk;
  if (br == 64 && D <= 128 && max_tile_keys <= 64 && kv_bufs != 2) {
    if (D <= 32) launch_tc<T, 32, 64, 4, 1>(p, grid, stream);
    else if (D <= 64) launch_tc<T, 64, 64, 4, 1>(p, grid, stream);
    else if (D <= 96) launch_tc<T, 96, 64, 4, 1>(p, grid, stream);
    else launch_tc<T, 128, 64, 4, 1>(p, grid, stream);
  } else if (br == 128 && D <= 128) {
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

void attention_cuda(const AttentionArgs& a, const ExecCtx& ctx) {
  if (a.batch <= 0 || a.lq <= 0 || a.heads <= 0 || a.head_dim <= 0) return;
  if (a.head_dim > 256)
    throw DeviceError("attention: head_dim " + std::to_string(a.head_dim) +
                      " is not supported by the CUDA kernel (at most 256)");
  if (a.batch > 65535 || a.heads > 65535)
    throw DeviceError("attention: batch and heads must each be at most 65535 on CUDA");
  const bool half = a.dtype == DType::BF16 || a.dtype == DType::F16;
  if (!half && a.dtype != DType::F32)
    throw DeviceError(std::string("attention: CUDA kernel got dtype ") + dtype_name(a.dtype));

  AttnParams p{};
  p.q = a.q;
  p.k = a.k;
  p.v = a.v;
  p.o = a.o;
  p.lq = checked_int(a.lq, "Lq");
  p.lk = checked_int(a.lk, "Lk");
  p.heads = static_cast<int>(a.heads);
  p.dim = static_cast<int>(a.head_dim);
  p.scale_log2 = a.scale * kLog2e;
  // Token offsets (tok * heads * D) are 64-bit; token counts must fit in int.
  checked_int(a.lq * a.heads, "Lq * heads");
  checked_int(a.lk * a.heads, "Lk * heads");
  int64_t keys_per_query = a.lk;
  if (a.group == AttnGroup::Spatial) keys_per_query = a.grid[1] * a.grid[2];
  if (a.group == AttnGroup::Temporal) keys_per_query = a.grid[0];
  const int br = half ? tc_rows(a.head_dim, keys_per_query) : kBRf;
  const int64_t tiles = plan_groups(a, br, &p);
  if (tiles <= 0) return;
  if (tiles > 0x7fffffffLL) throw DeviceError("attention: too many query tiles");
  p.rope = a.rope ? 1 : 0;
  if (a.rope) {
    if (a.grid[0] <= 0 || a.grid[1] <= 0 || a.grid[2] <= 0)
      throw DeviceError("attention: rope needs a positive grid [F, H, W]");
    for (int i = 0; i < 3; ++i)
      if (a.rope_dims[i] < 0 || a.rope_dims[i] % 2 != 0)
        throw DeviceError("attention: rope dims must be even and non-negative");
    p.grid_h = checked_int(a.grid[1], "grid H");
    p.grid_w = checked_int(a.grid[2], "grid W");
    checked_int(a.grid[1] * a.grid[2], "grid H*W");
    p.rope_d0 = checked_int(a.rope_dims[0], "rope dim");
    p.rope_d1 = checked_int(a.rope_dims[1], "rope dim");
    p.rope_d2 = checked_int(a.rope_dims[2], "rope dim");
    p.rope_off0 = static_cast<int>(a.rope_offset[0]);
    p.rope_off1 = static_cast<int>(a.rope_offset[1]);
    p.rope_off2 = static_cast<int>(a.rope_offset[2]);
    p.rope_theta = a.rope_theta;
    // Table layout: axis a holds grid[a] coordinates x rope_dims[a]/2 pairs.
    int64_t entries = 0;
    for (int i = 0; i < 3; ++i) {
      p.tab_off[i] = static_cast<int>(std::min<int64_t>(entries, 1 << 30));
      p.tab_half[i] = static_cast<int>(a.rope_dims[i] / 2);
      entries += a.grid[i] * (a.rope_dims[i] / 2);
    }
    p.rope_tab = entries <= (1 << 20) ? static_cast<int>(entries) : 0;  // launch_tc may still drop it
  }
  p.key_lengths = a.key_lengths;
  p.bias = a.bias;
  p.bias_batch_stride = a.bias_batch_stride;

  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  // bf16/f16 + RoPE: rotate Q and K once into scratch copies (pre-pass), then run the
  // attention kernel with rope off on them. The scratch Storage is stream-ordered; it is
  // held until after the launches below.
  std::shared_ptr<Storage> q_rot, k_rot;
  if (half && a.rope && !rope_fused_requested()) {
    const int64_t row_elems = a.heads * a.head_dim;
    const size_t q_bytes = static_cast<size_t>(a.batch * a.lq * row_elems) * 2;
    const size_t k_bytes = static_cast<size_t>(a.batch * a.lk * row_elems) * 2;
    if (!ctx.backend) throw DeviceError("attention: RoPE pre-pass needs a backend for scratch memory");
    q_rot = ctx.backend->allocate(q_bytes);
    if (k_bytes > 0) k_rot = ctx.backend->allocate(k_bytes);
    RopePrepass rp{};
    rp.src[0] = a.q;
    rp.dst[0] = q_rot->ptr;
    rp.rows[0] = a.batch * a.lq * a.heads;
    rp.len[0] = p.lq;
    rp.src[1] = a.k;
    rp.dst[1] = k_rot ? k_rot->ptr : nullptr;
    rp.rows[1] = k_rot ? a.batch * a.lk * a.heads : 0;
    rp.len[1] = std::max(p.lk, 1);
    AttnParams pp = p;
    pp.vec = (a.head_dim % 8 == 0) && aligned16(a.q) && aligned16(a.k) && aligned16(q_rot->ptr) &&
             (!k_rot || aligned16(k_rot->ptr));
    const int64_t max_rows = std::max(rp.rows[0], rp.rows[1]);
    const int64_t units = max_rows * (pp.vec ? a.head_dim / 8 : (a.head_dim + 1) / 2);
    const int64_t blocks = std::min<int64_t>((units + 255) / 256, 132 * 16);
    dim3 pgrid(static_cast<unsigned>(std::max<int64_t>(blocks, 1)), k_rot ? 2u : 1u, 1u);
    if (a.dtype == DType::BF16) rope_prepass_kernel<__nv_bfloat16><<<pgrid, 256, 0, stream>>>(rp, pp);
    else rope_prepass_kernel<__half><<<pgrid, 256, 0, stream>>>(rp, pp);
    TESSERA_CUDA_CHECK_LAUNCH("attention (RoPE pre-pass)");
    p.q = q_rot->ptr;
    if (k_rot) p.k = k_rot->ptr;
    p.rope = 0;
    p.rope_tab = 0;
  }
  p.vec = (a.head_dim % 8 == 0) && aligned16(p.q) && aligned16(p.k) && aligned16(a.v) && aligned16(a.o);

  // Hopper: the wgmma kernel (attention_sm90.cu) takes the cases it covers (bf16/f16, head
  // dim 64/128, no bias, full or spatial grouping) on sm_90a devices.
  if (half && attention_sm90(a, p.q, p.k, stream)) return;

  dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(a.heads), static_cast<unsigned>(a.batch));
  switch (a.dtype) {
    case DType::BF16: launch_tc_dim<__nv_bfloat16>(p, br, grid, stream); break;
    case DType::F16: launch_tc_dim<__half>(p, br, grid, stream); break;
    default: {
      F32Smem sm(p.dim);
      if (sm.total > 48 * 1024)
        TESSERA_CUDA_CHECK(cudaFuncSetAttribute(attn_f32_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                static_cast<int>(sm.total)));
      attn_f32_kernel<<<grid, 128, sm.total, stream>>>(p);
      TESSERA_CUDA_CHECK_LAUNCH("attention (f32 kernel)");
      break;
    }
  }
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "attention", AttentionArgs, attention_cuda);

}  // namespace tessera
