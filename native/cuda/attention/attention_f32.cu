// The fp32 attention kernel (SIMT): the same grouping, masking and RoPE semantics as the
// tensor-core kernel (attention.cu plans the call), in plain fp32 FMA - 16 query rows x
// 32-key tiles, 128 threads, Q/K/V/S/O in shared memory, any D <= 256. RoPE is applied in
// the kernel as Q and K tiles are loaded. A correctness path: slow, within the 1e-4 tolerance.
#include "cuda/attention/attention_kernels.h"
#include "cuda/runtime/cuda_backend.h"

namespace tessera {
namespace attn {
namespace {

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
  const Coord c = token_coord(p, tok);
  return RopePos{static_cast<float>(c.f + p.rope_off0), static_cast<float>(c.h + p.rope_off1),
                 static_cast<float>(c.w + p.rope_off2)};
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

constexpr int kBRf = kF32Rows;
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

}  // namespace

void launch_f32(const AttnParams& p, dim3 grid, cudaStream_t stream) {
  F32Smem sm(p.dim);
  if (sm.total > 48 * 1024)
    TESSERA_CUDA_CHECK(cudaFuncSetAttribute(attn_f32_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(sm.total)));
  attn_f32_kernel<<<grid, 128, sm.total, stream>>>(p);
  TESSERA_CUDA_CHECK_LAUNCH("attention (f32 kernel)");
}

}  // namespace attn
}  // namespace tessera
