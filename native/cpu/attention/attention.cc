// CPU "attention" (f32).
//
// Work is split by token group: full attention is one group, spatial attention one
// group per frame, temporal attention one group per (h, w) site. For every (batch, head)
// pair, K is RoPE-rotated once and stored transposed per group ([D][keys], keys padded
// to the vector width) and V is stored per group ([keys][D padded]), both in group order,
// so every inner loop streams contiguous memory whatever the grouping. Then each task
// takes a block of queries of one group, computes its whole score block S = Q K^T with
// register-tiled vector code, does an exact two-pass softmax in base 2 (scale * log2(e)
// is folded into Q), and accumulates P V the same way. Key padding only shortens the
// key range: within a group, keys are in token order, so the valid keys are a prefix.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "cpu/runtime/cpu_backend.h"
#include "tessera/kernels/attention.h"

namespace tessera {
namespace {

#if defined(__AVX512F__)
constexpr int kW = 16;
constexpr int kMaxCols = 4;  // 4 rows x 4 vectors = 16 of the 32 zmm registers
#elif defined(__AVX__)
constexpr int kW = 8;
constexpr int kMaxCols = 2;  // leaves room in the 16 ymm registers
#else
constexpr int kW = 4;
constexpr int kMaxCols = 2;
#endif
constexpr int kRows = 4;  // query rows per register tile
constexpr double kLog2e = 1.4426950408889634;

typedef float vf __attribute__((vector_size(kW * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(kW * sizeof(int32_t))));

inline vf loadv(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void storev(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline vf splat(float x) { return vf{} + x; }
inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Scratch that every kernel pass overwrites before reading: no zero-fill.
std::unique_ptr<float[]> scratch(int64_t n) { return std::unique_ptr<float[]>(new float[std::max<int64_t>(n, 1)]); }

// 2^x for x <= 0 (softmax arguments): round-to-nearest split x = n + f, |f| <= 1/2, and
// a degree-7 Taylor series of e^(f ln 2) (error < 3e-9 relative). x <= -127 gives 0, so
// -inf logits (masked by bias) vanish exactly; NaN stays NaN.
inline vf exp2v(vf x) {
  const vf lo = splat(-127.f);
  x = x < lo ? lo : x;
  const vf magic = splat(12582912.f);  // 1.5 * 2^23: adding it rounds to an integer
  const vf n = (x + magic) - magic;
  const vf f = (x - n) * splat(0.6931471805599453f);
  vf p = splat(1.f / 5040.f);
  p = p * f + splat(1.f / 720.f);
  p = p * f + splat(1.f / 120.f);
  p = p * f + splat(1.f / 24.f);
  p = p * f + splat(1.f / 6.f);
  p = p * f + splat(0.5f);
  p = p * f + splat(1.f);
  p = p * f + splat(1.f);
  const vi e = (__builtin_convertvector(n, vi) + 127) << 23;
  vf two_n;
  std::memcpy(&two_n, &e, sizeof two_n);
  return p * two_n;
}

inline float hmax(vf v) {
  float m = v[0];
  for (int i = 1; i < kW; ++i) m = v[i] > m ? v[i] : m;
  return m;
}
inline float hsum(vf v) {
  float s = 0.f;
  for (int i = 0; i < kW; ++i) s += v[i];
  return s;
}

// S[kRows][NC*kW] = Q[kRows][D] (row stride D) x Kt[D][...] (row stride ldk).
template <int NC>
inline void qk_tile(const float* q, int64_t D, const float* kt, int64_t ldk, float* s, int64_t lds) {
  vf acc[kRows][NC];
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = vf{};
  for (int64_t d = 0; d < D; ++d) {
    vf kv[NC];
    for (int c = 0; c < NC; ++c) kv[c] = loadv(kt + d * ldk + c * kW);
    for (int r = 0; r < kRows; ++r) {
      const float qv = q[r * D + d];
      for (int c = 0; c < NC; ++c) acc[r][c] += qv * kv[c];
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < NC; ++c) storev(s + r * lds + c * kW, acc[r][c]);
}

// O[kRows][NC*kW] += P[kRows][j0:j1] (row stride ldp) x V[j0:j1][NC*kW] (row stride ldv).
template <int NC>
inline void pv_tile(const float* p, int64_t ldp, int64_t j0, int64_t j1, const float* v, int64_t ldv, float* o,
                    int64_t ldo) {
  vf acc[kRows][NC];
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = loadv(o + r * ldo + c * kW);
  for (int64_t j = j0; j < j1; ++j) {
    vf vv[NC];
    for (int c = 0; c < NC; ++c) vv[c] = loadv(v + j * ldv + c * kW);
    for (int r = 0; r < kRows; ++r) {
      const float pr = p[r * ldp + j];
      for (int c = 0; c < NC; ++c) acc[r][c] += pr * vv[c];
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < NC; ++c) storev(o + r * ldo + c * kW, acc[r][c]);
}

void qk_cols(int nc, const float* q, int64_t D, const float* kt, int64_t ldk, float* s, int64_t lds) {
  switch (nc) {
    case 1: qk_tile<1>(q, D, kt, ldk, s, lds); break;
    case 2: qk_tile<2>(q, D, kt, ldk, s, lds); break;
    case 3: qk_tile<3>(q, D, kt, ldk, s, lds); break;
    default: qk_tile<4>(q, D, kt, ldk, s, lds); break;
  }
}

void pv_cols(int nc, const float* p, int64_t ldp, int64_t j0, int64_t j1, const float* v, int64_t ldv, float* o,
             int64_t ldo) {
  switch (nc) {
    case 1: pv_tile<1>(p, ldp, j0, j1, v, ldv, o, ldo); break;
    case 2: pv_tile<2>(p, ldp, j0, j1, v, ldv, o, ldo); break;
    case 3: pv_tile<3>(p, ldp, j0, j1, v, ldv, o, ldo); break;
    default: pv_tile<4>(p, ldp, j0, j1, v, ldv, o, ldo); break;
  }
}

struct Plan {
  const AttentionArgs* a = nullptr;
  int64_t D = 0, Dp = 0;       // head dim, padded to the vector width
  int64_t hw = 1;              // tokens per frame
  int64_t groups = 1;          // token groups per (batch, head)
  int64_t gq = 0, gk = 0;      // queries / keys per group
  int64_t gkp = 0;             // keys per group padded to the vector width
  int64_t qb = kRows;          // queries per task
  int64_t qblocks = 1;         // tasks per group
  float qmul = 1.f;            // scale * log2(e)
  // RoPE: per axis, cos/sin of (pos + offset) * theta^(-2i/d) for pos in [0, grid).
  std::vector<float> cosv[3], sinv[3];
  int64_t half[3] = {0, 0, 0}, start[3] = {0, 0, 0};

  int64_t token(int64_t g, int64_t t) const {
    switch (a->group) {
      case AttnGroup::Spatial: return g * hw + t;
      case AttnGroup::Temporal: return t * hw + g;
      default: return t;
    }
  }

  // Keys of group g that key_lengths[b] leaves unmasked (a prefix, in group order).
  int64_t valid_keys(int64_t b, int64_t g) const {
    if (!a->key_lengths) return gk;
    const int64_t kl = a->key_lengths[b];
    switch (a->group) {
      case AttnGroup::Spatial: return std::clamp<int64_t>(kl - g * hw, 0, gk);
      case AttnGroup::Temporal: return kl <= g ? 0 : std::min<int64_t>(gk, (kl - g + hw - 1) / hw);
      default: return std::clamp<int64_t>(kl, 0, gk);
    }
  }

  // dst = rope(src) * mul for the head row of token `tok`.
  void load_row(const float* src, int64_t tok, float mul, float* dst) const {
    if (!a->rope) {
      for (int64_t d = 0; d < D; ++d) dst[d] = src[d] * mul;
      return;
    }
    const int64_t pos[3] = {tok / hw, (tok / a->grid[2]) % a->grid[1], tok % a->grid[2]};
    for (int ax = 0; ax < 3; ++ax) {
      const int64_t n = half[ax];
      const float* cs = cosv[ax].data() + pos[ax] * n;
      const float* sn = sinv[ax].data() + pos[ax] * n;
      const float* x = src + start[ax];
      float* y = dst + start[ax];
      for (int64_t i = 0; i < n; ++i) {
        const float x0 = x[2 * i], x1 = x[2 * i + 1];
        y[2 * i] = (x0 * cs[i] - x1 * sn[i]) * mul;
        y[2 * i + 1] = (x0 * sn[i] + x1 * cs[i]) * mul;
      }
    }
  }
};

void attention_cpu(const AttentionArgs& a, const ExecCtx& ctx) {
  const float* Q = static_cast<const float*>(a.q);
  const float* K = static_cast<const float*>(a.k);
  const float* V = static_cast<const float*>(a.v);
  float* O = static_cast<float*>(a.o);
  const int64_t B = a.batch, H = a.heads, D = a.head_dim, Lq = a.lq, Lk = a.lk;
  if (B * H * Lq * D == 0) return;

  Plan P;
  P.a = &a;
  P.D = D;
  P.Dp = round_up(D, kW);
  P.hw = a.grid[1] * a.grid[2];
  if (P.hw <= 0) P.hw = 1;
  switch (a.group) {
    case AttnGroup::Spatial: P.groups = a.grid[0]; P.gq = P.gk = P.hw; break;
    case AttnGroup::Temporal: P.groups = P.hw; P.gq = P.gk = a.grid[0]; break;
    default: P.groups = 1; P.gq = Lq; P.gk = Lk; break;
  }
  P.gkp = round_up(P.gk, kW);
  P.qmul = static_cast<float>(static_cast<double>(a.scale) * kLog2e);
  if (a.rope) {
    int64_t c0 = 0;
    for (int ax = 0; ax < 3; ++ax) {
      const int64_t d = a.rope_dims[ax], n = d / 2, len = a.grid[ax];
      P.half[ax] = n;
      P.start[ax] = c0;
      c0 += d;
      P.cosv[ax].resize(len * n);
      P.sinv[ax].resize(len * n);
      for (int64_t p = 0; p < len; ++p)
        for (int64_t i = 0; i < n; ++i) {
          // Double precision: positions times the lowest frequencies reach large angles.
          const double ang = static_cast<double>(p + a.rope_offset[ax]) *
                             std::pow(static_cast<double>(a.rope_theta), -2.0 * i / static_cast<double>(d));
          P.cosv[ax][p * n + i] = static_cast<float>(std::cos(ang));
          P.sinv[ax][p * n + i] = static_cast<float>(std::sin(ang));
        }
    }
  }

  // Query block: the score block (qb x gkp floats) should stay in L2, and there should
  // be a few tasks per thread to balance the load.
  const int64_t pairs = B * H;
  const int64_t threads = ctx.pool->size();
  int64_t qb = std::clamp<int64_t>((65536 / std::max<int64_t>(P.gkp, 1)) / kRows * kRows, kRows, 64);
  qb = std::min(qb, round_up(std::max<int64_t>(P.gq, 1), kRows));
  while (qb > kRows && pairs * P.groups * ((P.gq + qb - 1) / qb) < 4 * threads) qb = round_up(qb / 2, kRows);
  P.qb = qb;
  P.qblocks = (P.gq + qb - 1) / qb;

  // Prepared K^T and V for as many (b, h) pairs as fit in about 32 MB (at least one).
  const int64_t kt_size = P.groups * D * P.gkp;
  const int64_t v_size = P.groups * P.gk * P.Dp;
  const int64_t per_pair = std::max<int64_t>(kt_size + v_size, 1);
  const int64_t pair_batch = std::clamp<int64_t>((int64_t{8} << 20) / per_pair, 1, pairs);
  const auto kt_buf = scratch(pair_batch * kt_size);
  const auto v_buf = scratch(pair_batch * v_size);
  // Keys per slice of K^T (D x slice) and V (slice x D) that stays in L1 across row tiles.
  const int64_t key_block = std::clamp<int64_t>(8192 / std::max<int64_t>(D, 1) / 64 * 64, 64, 256);

  for (int64_t p0 = 0; p0 < pairs; p0 += pair_batch) {
    const int64_t np = std::min(pair_batch, pairs - p0);

    ctx.pool->parallel_for(np * P.groups, 1, [&](int64_t lo, int64_t hi) {
      const auto row = scratch(D);
      for (int64_t u = lo; u < hi; ++u) {
        const int64_t pp = u / P.groups, g = u % P.groups;
        const int64_t b = (p0 + pp) / H, h = (p0 + pp) % H;
        float* kt = kt_buf.get() + pp * kt_size + g * D * P.gkp;
        float* vg = v_buf.get() + pp * v_size + g * P.gk * P.Dp;
        for (int64_t t = 0; t < P.gk; ++t) {
          const int64_t tok = P.token(g, t);
          const int64_t off = ((b * Lk + tok) * H + h) * D;
          P.load_row(K + off, tok, 1.f, row.get());
          for (int64_t d = 0; d < D; ++d) kt[d * P.gkp + t] = row[d];
          float* vr = vg + t * P.Dp;
          std::memcpy(vr, V + off, sizeof(float) * D);
          for (int64_t d = D; d < P.Dp; ++d) vr[d] = 0.f;
        }
        for (int64_t d = 0; d < D; ++d)
          for (int64_t t = P.gk; t < P.gkp; ++t) kt[d * P.gkp + t] = 0.f;
      }
    });

    // One invocation per thread, each pulling query blocks from a shared counter: the
    // pool's contiguous chunks would leave threads idle when the block count is small.
    const int64_t ntasks = np * P.groups * P.qblocks;
    std::atomic<int64_t> next{0};
    ctx.pool->parallel_for(std::min(threads, ntasks), 1, [&](int64_t, int64_t) {
      const int64_t qbp = P.qb;  // already a multiple of kRows
      const auto qs = scratch(qbp * D), S = scratch(qbp * P.gkp), acc = scratch(qbp * P.Dp), inv = scratch(qbp);
      for (int64_t u = next.fetch_add(1); u < ntasks; u = next.fetch_add(1)) {
        const int64_t blk = u % P.qblocks, g = (u / P.qblocks) % P.groups, pp = u / (P.qblocks * P.groups);
        const int64_t b = (p0 + pp) / H, h = (p0 + pp) % H;
        const int64_t t0 = blk * P.qb, nq = std::min(P.qb, P.gq - t0), nqp = round_up(nq, kRows);
        const int64_t nk = P.valid_keys(b, g);
        if (nk == 0) {
          for (int64_t r = 0; r < nq; ++r) {
            float* out = O + ((b * Lq + P.token(g, t0 + r)) * H + h) * D;
            std::fill(out, out + D, 0.f);
          }
          continue;
        }
        const float* kt = kt_buf.get() + pp * kt_size + g * D * P.gkp;
        const float* vg = v_buf.get() + pp * v_size + g * P.gk * P.Dp;

        for (int64_t r = 0; r < nq; ++r) {
          const int64_t tok = P.token(g, t0 + r);
          P.load_row(Q + ((b * Lq + tok) * H + h) * D, tok, P.qmul, qs.get() + r * D);
        }
        std::fill(qs.get() + nq * D, qs.get() + nqp * D, 0.f);

        // S = Q K^T over the valid keys, rounded up to whole vectors (K^T is zero-padded).
        const int64_t nkp = round_up(nk, kW);
        for (int64_t j0 = 0; j0 < nkp; j0 += key_block) {
          const int64_t j1 = std::min(nkp, j0 + key_block);
          for (int64_t r0 = 0; r0 < nqp; r0 += kRows)
            for (int64_t j = j0; j < j1;) {
              const int nc = static_cast<int>(std::min<int64_t>(kMaxCols, (j1 - j) / kW));
              qk_cols(nc, qs.get() + r0 * D, D, kt + j, P.gkp, S.get() + r0 * P.gkp + j, P.gkp);
              j += nc * kW;
            }
        }

        if (a.bias) {
          const float lg = static_cast<float>(kLog2e);
          for (int64_t r = 0; r < nq; ++r) {
            const int64_t tq = P.token(g, t0 + r);
            const float* br = a.bias + b * a.bias_batch_stride + (h * Lq + tq) * Lk;
            float* s = S.get() + r * P.gkp;
            if (a.group == AttnGroup::Full) {
              for (int64_t j = 0; j < nk; ++j) s[j] += br[j] * lg;
            } else {
              for (int64_t j = 0; j < nk; ++j) s[j] += br[P.token(g, j)] * lg;
            }
          }
        }

        // Softmax numerators in place; the 1/sum is applied after P V.
        for (int64_t r = 0; r < nqp; ++r) {
          float* s = S.get() + r * P.gkp;
          if (r >= nq) {
            std::fill(s, s + nkp, 0.f);
            inv[r] = 0.f;
            continue;
          }
          const int64_t nfull = nk / kW * kW;
          float m = -std::numeric_limits<float>::infinity();
          if (nfull > 0) {
            vf mv = loadv(s);
            for (int64_t j = kW; j < nfull; j += kW) {
              const vf x = loadv(s + j);
              mv = x > mv ? x : mv;
            }
            m = hmax(mv);
          }
          for (int64_t j = nfull; j < nk; ++j) m = s[j] > m ? s[j] : m;
          if (m == -std::numeric_limits<float>::infinity()) {
            // Every key masked by the bias: the row's output is zero.
            std::fill(s, s + nkp, 0.f);
            inv[r] = 0.f;
            continue;
          }
          const vf mv = splat(m);
          vf sv = vf{};
          for (int64_t j = 0; j < nfull; j += kW) {
            const vf e = exp2v(loadv(s + j) - mv);
            storev(s + j, e);
            sv += e;
          }
          float sum = hsum(sv);
          if (nfull < nkp) {
            const vf e = exp2v(loadv(s + nfull) - mv);
            storev(s + nfull, e);
            for (int64_t j = nfull; j < nk; ++j) sum += s[j];
            for (int64_t j = nk; j < nkp; ++j) s[j] = 0.f;
          }
          inv[r] = 1.f / sum;
        }

        // acc = P V, key block by key block so the V slice stays in L1 across row tiles.
        std::fill(acc.get(), acc.get() + nqp * P.Dp, 0.f);
        for (int64_t j0 = 0; j0 < nk; j0 += key_block) {
          const int64_t j1 = std::min(nk, j0 + key_block);
          for (int64_t r0 = 0; r0 < nqp; r0 += kRows)
            for (int64_t c0 = 0; c0 < P.Dp;) {
              const int nc = static_cast<int>(std::min<int64_t>(kMaxCols, (P.Dp - c0) / kW));
              pv_cols(nc, S.get() + r0 * P.gkp, P.gkp, j0, j1, vg + c0, P.Dp, acc.get() + r0 * P.Dp + c0, P.Dp);
              c0 += nc * kW;
            }
        }

        for (int64_t r = 0; r < nq; ++r) {
          float* out = O + ((b * Lq + P.token(g, t0 + r)) * H + h) * D;
          const float* ar = acc.get() + r * P.Dp;
          const float w = inv[r];
          for (int64_t d = 0; d < D; ++d) out[d] = ar[d] * w;
        }
      }
    });
  }
}

}  // namespace

TESSERA_REGISTER_KERNEL(cpu_kernels, "attention", AttentionArgs, attention_cpu);

}  // namespace tessera
