#include "gemm_f32.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "cpu/common/activation.h"
#include "cpu/runtime/thread_pool.h"

namespace tessera {
namespace {

// KC x MR floats of A (12 KiB) stay in L1 while a KC x NC block of B (1 MiB)
// streams from L2 past them; L2 is 1-2 MiB per core on the parts we target.
constexpr int64_t kKC = kGemmKC;
constexpr int64_t kNC = 1024;
static_assert(kNC % kGemmNR == 0, "NC must hold whole panels");
// Below this many flops a fork/join costs more than it saves.
constexpr double kParallelFlops = 2.0 * 96 * 96 * 96;

// ---- a minimal vector layer, one ISA per build ----
#if defined(__AVX512F__)
using V = __m512;
constexpr int kW = 16;
inline V vzero() { return _mm512_setzero_ps(); }
inline V vload(const float* p) { return _mm512_load_ps(p); }
inline V vloadu(const float* p) { return _mm512_loadu_ps(p); }
inline void vstoreu(float* p, V v) { _mm512_storeu_ps(p, v); }
inline V vset1(float x) { return _mm512_set1_ps(x); }
inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
inline V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
inline V vdiv(V a, V b) { return _mm512_div_ps(a, b); }
// The all-lanes masked forms: GCC 12's unmasked ones read an "undefined" register
// and trip -Wmaybe-uninitialized.
inline V vmin(V a, V b) { return _mm512_mask_min_ps(a, 0xffff, a, b); }
inline V vmax(V a, V b) { return _mm512_mask_max_ps(a, 0xffff, a, b); }
inline V vround(V a) {
  return _mm512_mask_roundscale_ps(a, 0xffff, a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
inline V vscale2(V p, V n) { return _mm512_mask_scalef_ps(p, 0xffff, p, n); }  // p * 2^n
// Lane masks for the ragged right edge of C.
using Mask = __mmask16;
inline Mask vmask(int64_t lanes) {
  return lanes >= kW ? Mask(0xffff) : lanes <= 0 ? Mask(0) : static_cast<Mask>((1u << lanes) - 1);
}
inline V vloadm(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
inline void vstorem(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
#define TESSERA_GEMM_VEC_EXP 1
#define TESSERA_GEMM_MASKED 1
#elif defined(__AVX2__) && defined(__FMA__)
using V = __m256;
constexpr int kW = 8;
inline V vzero() { return _mm256_setzero_ps(); }
inline V vload(const float* p) { return _mm256_load_ps(p); }
inline V vloadu(const float* p) { return _mm256_loadu_ps(p); }
inline void vstoreu(float* p, V v) { _mm256_storeu_ps(p, v); }
inline V vset1(float x) { return _mm256_set1_ps(x); }
inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }
inline V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V vdiv(V a, V b) { return _mm256_div_ps(a, b); }
inline V vmin(V a, V b) { return _mm256_min_ps(a, b); }
inline V vmax(V a, V b) { return _mm256_max_ps(a, b); }
inline V vround(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline V vscale2(V p, V n) {
  // n is integral and within [-126, 127] here, so 2^n is built directly in the exponent field.
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
using Mask = __m256i;
inline Mask vmask(int64_t lanes) {
  const int32_t n = static_cast<int32_t>(lanes < 0 ? 0 : lanes > kW ? kW : lanes);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline V vloadm(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
inline void vstorem(float* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
#define TESSERA_GEMM_VEC_EXP 1
#define TESSERA_GEMM_MASKED 1
#else
// Portable fallback: short fixed-size loops the compiler can map onto whatever SIMD exists.
struct V {
  float v[4];
};
constexpr int kW = 4;
inline V vzero() { return V{{0.f, 0.f, 0.f, 0.f}}; }
inline V vload(const float* p) {
  V r;
  for (int i = 0; i < kW; ++i) r.v[i] = p[i];
  return r;
}
inline V vloadu(const float* p) { return vload(p); }
inline void vstoreu(float* p, V a) {
  for (int i = 0; i < kW; ++i) p[i] = a.v[i];
}
inline V vset1(float x) { return V{{x, x, x, x}}; }
inline V vfma(V a, V b, V c) {
  for (int i = 0; i < kW; ++i) c.v[i] += a.v[i] * b.v[i];
  return c;
}
inline V vadd(V a, V b) {
  for (int i = 0; i < kW; ++i) a.v[i] += b.v[i];
  return a;
}
inline V vmul(V a, V b) {
  for (int i = 0; i < kW; ++i) a.v[i] *= b.v[i];
  return a;
}
#endif

constexpr int kNV = kGemmNR / kW;
static_assert(kNV * kW == kGemmNR, "NR must be a whole number of vectors");

// How one tile of C is written: C = (accumulate ? C : 0) + alpha * acc + bias.
struct TileStore {
  float alpha;
  bool accumulate;
  const float* bias;  // at the tile's first column; only on the last K block
};

template <int MR, int NV>
inline void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict c,
                         int64_t ldc, int64_t mr, int64_t nr, const TileStore& st) {
  constexpr int NR = NV * kW;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = vzero();
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    V bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = vload(b + j * kW);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V av = vset1(a[i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = vfma(av, bv[j], acc[i][j]);
    }
    a += MR;
    b += NR;
  }
  const V alpha = vset1(st.alpha);
  if (mr == MR && nr == NR) {
    V bias[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bias[j] = st.bias ? vloadu(st.bias + j * kW) : vzero();
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      float* row = c + i * ldc;
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) {
        V base = st.accumulate ? vadd(vloadu(row + j * kW), bias[j]) : bias[j];
        vstoreu(row + j * kW, vfma(alpha, acc[i][j], base));
      }
    }
    return;
  }
  // Edge tile: only rows < mr and columns < nr exist in C.
#if defined(TESSERA_GEMM_MASKED)
  Mask mk[NV];
#pragma GCC unroll 4
  for (int j = 0; j < NV; ++j) mk[j] = vmask(nr - j * kW);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= mr) break;
    float* row = c + i * ldc;
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      if (j * kW >= nr) break;
      V base = st.bias ? vloadm(st.bias + j * kW, mk[j]) : vzero();
      if (st.accumulate) base = vadd(base, vloadm(row + j * kW, mk[j]));
      vstorem(row + j * kW, mk[j], vfma(alpha, acc[i][j], base));
    }
  }
#else
  alignas(64) float t[MR * NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) vstoreu(t + i * NR + j * kW, acc[i][j]);
  for (int64_t i = 0; i < mr; ++i) {
    float* row = c + i * ldc;
    for (int64_t j = 0; j < nr; ++j) {
      float base = (st.accumulate ? row[j] : 0.f) + (st.bias ? st.bias[j] : 0.f);
      row[j] = st.alpha * t[i * NR + j] + base;
    }
  }
#endif
}

// Per-thread packing buffers; they live as long as the (pooled) thread.
class PackBuffers {
 public:
  ~PackBuffers() {
    std::free(a_);
    std::free(b_);
  }
  float* a(size_t n) { return grow(&a_, &a_cap_, n); }
  float* b(size_t n) { return grow(&b_, &b_cap_, n); }

 private:
  static float* grow(float** p, size_t* cap, size_t n) {
    if (n > *cap) {
      std::free(*p);
      *p = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
      if (!*p) {
        *cap = 0;
        throw std::bad_alloc();
      }
      *cap = n;
    }
    return *p;
  }
  float* a_ = nullptr;
  float* b_ = nullptr;
  size_t a_cap_ = 0, b_cap_ = 0;
};

PackBuffers& pack_buffers() {
  thread_local PackBuffers bufs;
  return bufs;
}

// One task: rows [i0, i1) x columns [j0, j1) of C for one batch entry, serially.
void gemm_region(const GemmDesc& d, int64_t batch, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  constexpr int64_t MR = kGemmMR, NR = kGemmNR;
  PackBuffers& bufs = pack_buffers();
  const int64_t kc_max = std::min(kKC, d.k);
  const int64_t nc_max = std::min(kNC, (j1 - j0 + NR - 1) / NR * NR);
  float* apack = bufs.a(static_cast<size_t>(MR * kc_max));
  float* bpack = bufs.b(static_cast<size_t>(nc_max * kc_max));
  float* cb = d.c + batch * d.stride_c;
  for (int64_t jc = j0; jc < j1; jc += kNC) {
    const int64_t nc = std::min(kNC, j1 - jc);
    for (int64_t pc = 0; pc < d.k; pc += kKC) {
      const int64_t kc = std::min(kKC, d.k - pc);
      const bool first = pc == 0, last = pc + kc >= d.k;
      for (int64_t jp = 0; jp < nc; jp += NR) {
        const int64_t cols = std::min(NR, nc - jp);
        float* dst = bpack + jp * kc;
        if (cols < NR) std::memset(dst, 0, sizeof(float) * static_cast<size_t>(kc * NR));
        d.pack_b(d.ctx, batch, jc + jp, cols, pc, kc, dst);
      }
      for (int64_t ir = i0; ir < i1; ir += MR) {
        const int64_t rows = std::min(MR, i1 - ir);
        if (rows < MR) std::memset(apack, 0, sizeof(float) * static_cast<size_t>(kc * MR));
        d.pack_a(d.ctx, batch, ir, rows, pc, kc, apack);
        float* crow = cb + ir * d.ldc + jc;
        for (int64_t jp = 0; jp < nc; jp += NR) {
          const TileStore st{d.alpha, !first, last && d.bias ? d.bias + jc + jp : nullptr};
          micro_kernel<kGemmMR, kNV>(kc, apack, bpack + jp * kc, crow + jp, d.ldc, rows, std::min(NR, nc - jp), st);
        }
        if (last && d.epilogue != Epilogue::None)
          for (int64_t r = 0; r < rows; ++r) apply_epilogue_f32(crow + r * d.ldc, nc, d.epilogue);
      }
    }
  }
}

// How to cut one batch entry into `parts` regions (pm row bands x pn column bands):
// the split that minimises the slowest region's compute plus its packing.
void choose_split(int64_t m, int64_t n, int64_t k, int64_t parts, int64_t* pm_out, int64_t* pn_out) {
  const int64_t mt = (m + kGemmMR - 1) / kGemmMR, nt = (n + kGemmNR - 1) / kGemmNR;
  double best = -1;
  *pm_out = 1;
  *pn_out = 1;
  for (int64_t pm = 1; pm <= parts; ++pm) {
    if (parts % pm) continue;
    const int64_t pn = parts / pm;
    if (pm > mt || pn > nt) continue;
    const double rows = static_cast<double>((mt + pm - 1) / pm * kGemmMR);
    const double cols = static_cast<double>((nt + pn - 1) / pn * kGemmNR);
    const double kd = static_cast<double>(k);
    // ~32 multiply-adds per cycle against ~1 packed element per cycle.
    const double cost = rows * cols * kd / 32 + rows * kd * std::ceil(cols / kNC) + cols * kd;
    if (best < 0 || cost < best) {
      best = cost;
      *pm_out = pm;
      *pn_out = pn;
    }
  }
}

int64_t gcd64(int64_t a, int64_t b) {
  while (b) {
    int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

#if defined(TESSERA_GEMM_VEC_EXP)
// exp(x) to ~1 ulp over the float range (Cephes expf polynomial).
inline V vexp(V x) {
  x = vmax(vmin(x, vset1(88.3762626647949f)), vset1(-87.3365447505531f));
  const V n = vround(vmul(x, vset1(1.44269504088896341f)));
  V r = vfma(n, vset1(-0.693359375f), x);
  r = vfma(n, vset1(2.12194440e-4f), r);
  V p = vset1(1.9875691500e-4f);
  p = vfma(p, r, vset1(1.3981999507e-3f));
  p = vfma(p, r, vset1(8.3334519073e-3f));
  p = vfma(p, r, vset1(4.1665795894e-2f));
  p = vfma(p, r, vset1(1.6666665459e-1f));
  p = vfma(p, r, vset1(5.0000001201e-1f));
  p = vfma(p, vmul(r, r), vadd(r, vset1(1.f)));
  return vscale2(p, n);
}

// x * sigmoid(z): silu has z = x; gelu_tanh has z = 2u since 0.5(1 + tanh u) = sigmoid(2u).
template <bool Gelu>
inline V vact(V x) {
  V z = x;
  if (Gelu) {
    const V x3 = vmul(vmul(x, x), x);
    z = vmul(vfma(x3, vset1(0.044715f), x), vset1(-2.f * 0.7978845608028654f));
  } else {
    z = vmul(x, vset1(-1.f));
  }
  return vdiv(x, vadd(vset1(1.f), vexp(z)));
}

template <bool Gelu>
void act_span(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) vstoreu(x + i, vact<Gelu>(vloadu(x + i)));
  for (; i < n; ++i) x[i] = Gelu ? gelu_tanh_f(x[i]) : silu_f(x[i]);
}
#else
template <bool Gelu>
void act_span(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = Gelu ? gelu_tanh_f(x[i]) : silu_f(x[i]);
}
#endif

}  // namespace

void apply_epilogue_f32(float* x, int64_t n, Epilogue epi) {
  if (epi == Epilogue::GeluTanh) act_span<true>(x, n);
  else if (epi == Epilogue::Silu) act_span<false>(x, n);
}

void gemm_f32(const GemmDesc& d, ThreadPool* pool) {
  if (d.batch <= 0 || d.m <= 0 || d.n <= 0) return;
  if (d.k <= 0) {
    // An empty sum: C is just the epilogue of the bias.
    for (int64_t b = 0; b < d.batch; ++b)
      for (int64_t i = 0; i < d.m; ++i) {
        float* row = d.c + b * d.stride_c + i * d.ldc;
        for (int64_t j = 0; j < d.n; ++j) row[j] = d.bias ? d.bias[j] : 0.f;
        apply_epilogue_f32(row, d.n, d.epilogue);
      }
    return;
  }
  const int64_t threads = pool ? pool->size() : 1;
  const double flops = 2.0 * static_cast<double>(d.batch) * static_cast<double>(d.m) * static_cast<double>(d.n) *
                       static_cast<double>(d.k);
  int64_t parts = 1;
  if (threads > 1 && flops >= kParallelFlops && d.batch < 8 * threads) {
    // Enough regions per batch entry that the task count is a multiple of the thread count.
    parts = threads / gcd64(d.batch, threads);
  }
  int64_t pm = 1, pn = 1;
  choose_split(d.m, d.n, d.k, parts, &pm, &pn);
  parts = pm * pn;
  const int64_t mt = (d.m + kGemmMR - 1) / kGemmMR, nt = (d.n + kGemmNR - 1) / kGemmNR;
  auto run = [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t b = t / parts, r = t % parts, im = r / pn, jn = r % pn;
      const int64_t i0 = im * mt / pm * kGemmMR, i1 = std::min(d.m, (im + 1) * mt / pm * kGemmMR);
      const int64_t j0 = jn * nt / pn * kGemmNR, j1 = std::min(d.n, (jn + 1) * nt / pn * kGemmNR);
      if (i0 < i1 && j0 < j1) gemm_region(d, b, i0, i1, j0, j1);
    }
  };
  const int64_t tasks = d.batch * parts;
  if (threads == 1 || tasks == 1 || flops < kParallelFlops) {
    run(0, tasks);
  } else {
    pool->parallel_for(tasks, 1, run);
  }
}

}  // namespace tessera
