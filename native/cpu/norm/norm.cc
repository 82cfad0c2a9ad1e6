// CPU "norm", "group_norm" and "gated_residual" (f32).
//
// Statistics are two-pass (mean, then squared deviations from it), so a large common
// offset does not cancel catastrophically as it would in E[x^2] - E[x]^2. Sums run in
// 16 independent fp32 lanes (which the compiler vectorises without reassociating) and
// the lanes are combined in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/common/activation.h"
#include "cpu/runtime/cpu_backend.h"
#include "tessera/kernels/norm.h"

namespace tessera {
namespace {

constexpr int kLanes = 16;

// sum of (x - c); with c near the data (its first element) the fp32 lanes add small
// numbers, so a large common offset costs no accuracy in the mean.
double sum_dev(const float* x, int64_t n, float c) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int i = 0; i < kLanes; ++i) acc[i] += x[j + i] - c;
  double s = 0;
  for (int i = 0; i < kLanes; ++i) s += acc[i];
  for (; j < n; ++j) s += static_cast<double>(x[j]) - c;
  return s;
}

// sum of (x - c)^2
double sum_sq_dev(const float* x, int64_t n, float c) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int i = 0; i < kLanes; ++i) {
      const float d = x[j + i] - c;
      acc[i] += d * d;
    }
  double s = 0;
  for (int i = 0; i < kLanes; ++i) s += acc[i];
  for (; j < n; ++j) {
    const double d = static_cast<double>(x[j]) - c;
    s += d * d;
  }
  return s;
}

// Rows of about this many floats per parallel chunk keep the pool overhead small.
int64_t row_grain(int64_t channels) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(channels, 1)); }

void norm_cpu(const NormArgs& a, const ExecCtx& ctx) {
  const float* X = static_cast<const float*>(a.x);
  const float* W = static_cast<const float*>(a.weight);
  const float* Bi = static_cast<const float*>(a.bias);
  const float* Sc = static_cast<const float*>(a.scale);
  const float* Sh = static_cast<const float*>(a.shift);
  float* Y = static_cast<float*>(a.out);
  const int64_t C = a.channels, L = a.len;
  ctx.pool->parallel_for(a.batch * L, row_grain(C), [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const float* x = X + row * C;
      float* y = Y + row * C;
      // Centred on x[0]: (x - x0) - (mean - x0) keeps the digits that x - mean would
      // lose to the rounding of a large mean.
      float x0 = 0.f, dmean = 0.f;
      double var;
      if (a.kind == NormKind::Layer) {
        x0 = x[0];
        const double dm = sum_dev(x, C, x0) / static_cast<double>(C);
        dmean = static_cast<float>(dm);
        var = sum_sq_dev(x, C, static_cast<float>(x0 + dm)) / static_cast<double>(C);
      } else {
        var = sum_sq_dev(x, C, 0.f) / static_cast<double>(C);
      }
      const float rstd = static_cast<float>(1.0 / std::sqrt(var + a.eps));
      for (int64_t c = 0; c < C; ++c) y[c] = ((x[c] - x0) - dmean) * rstd;
      if (W)
        for (int64_t c = 0; c < C; ++c) y[c] *= W[c];
      if (Bi)
        for (int64_t c = 0; c < C; ++c) y[c] += Bi[c];
      const int64_t mod_row = a.mod_per_token ? row : row / L;
      if (Sc) {
        const float* s = Sc + mod_row * C;
        for (int64_t c = 0; c < C; ++c) y[c] *= 1.f + s[c];
      }
      if (Sh) {
        const float* s = Sh + mod_row * C;
        for (int64_t c = 0; c < C; ++c) y[c] += s[c];
      }
    }
  });
}

void group_norm_cpu(const GroupNormArgs& a, const ExecCtx& ctx) {
  const float* X = static_cast<const float*>(a.x);
  const float* W = static_cast<const float*>(a.weight);
  const float* Bi = static_cast<const float*>(a.bias);
  float* Y = static_cast<float*>(a.out);
  const int64_t Bn = a.batch, S = a.spatial, C = a.channels, G = a.groups, cg = C / G;

  // Each group's channels are interleaved with the others' in every position, so the
  // statistics are gathered for all groups at once, position chunk by position chunk
  // (one sweep over memory per pass instead of one per group). Per-channel fp32 sums run
  // over kSubBlock positions at a time (short enough that a large common offset costs no
  // accuracy) and are folded into double.
  constexpr int64_t kSubBlock = 64;
  const int64_t chunk = std::clamp<int64_t>(65536 / std::max<int64_t>(C, 1), kSubBlock, 1024);
  const int64_t nchunks = (S + chunk - 1) / chunk;
  std::vector<double> partial(static_cast<size_t>(Bn * nchunks * G));
  std::vector<float> mean_c(static_cast<size_t>(Bn * C));
  std::vector<double> mean_g(static_cast<size_t>(Bn * G)), var_g(static_cast<size_t>(Bn * G));
  const double count = static_cast<double>(S) * static_cast<double>(cg);

  auto sweep = [&](bool deviations) {
    ctx.pool->parallel_for(Bn * nchunks, 1, [&](int64_t lo, int64_t hi) {
      std::vector<float> ch(C);
      std::vector<double> chd(C);
      for (int64_t u = lo; u < hi; ++u) {
        const int64_t b = u / nchunks, s0 = (u % nchunks) * chunk, s1 = std::min(S, s0 + chunk);
        std::fill(chd.begin(), chd.end(), 0.0);
        const float* m = mean_c.data() + b * C;
        for (int64_t sb = s0; sb < s1; sb += kSubBlock) {
          std::fill(ch.begin(), ch.end(), 0.f);
          for (int64_t s = sb; s < std::min(s1, sb + kSubBlock); ++s) {
            const float* x = X + (b * S + s) * C;
            if (deviations) {
              for (int64_t c = 0; c < C; ++c) {
                const float d = x[c] - m[c];
                ch[c] += d * d;
              }
            } else {
              for (int64_t c = 0; c < C; ++c) ch[c] += x[c];
            }
          }
          for (int64_t c = 0; c < C; ++c) chd[c] += ch[c];
        }
        double* out = partial.data() + u * G;
        for (int64_t g = 0; g < G; ++g) {
          double t = 0;
          for (int64_t c = g * cg; c < (g + 1) * cg; ++c) t += chd[c];
          out[g] = t;
        }
      }
    });
  };
  auto reduce = [&](std::vector<double>& dst) {
    for (int64_t b = 0; b < Bn; ++b)
      for (int64_t g = 0; g < G; ++g) {
        double t = 0;
        for (int64_t k = 0; k < nchunks; ++k) t += partial[(b * nchunks + k) * G + g];
        dst[b * G + g] = t / count;
      }
  };

  sweep(false);
  reduce(mean_g);
  for (int64_t b = 0; b < Bn; ++b)
    for (int64_t c = 0; c < C; ++c) mean_c[b * C + c] = static_cast<float>(mean_g[b * G + c / cg]);
  sweep(true);
  reduce(var_g);

  // y = (x - mean) * mul + add per (batch, channel). Centring first keeps a group of
  // near-equal values (variance ~ 0, rstd ~ 1/sqrt(eps)) from amplifying rounding.
  std::vector<float> mul(static_cast<size_t>(Bn * C)), add(static_cast<size_t>(Bn * C));
  for (int64_t b = 0; b < Bn; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t g = c / cg;
      const double rstd = 1.0 / std::sqrt(var_g[b * G + g] + a.eps);
      const double w = W ? W[c] : 1.0;
      mul[b * C + c] = static_cast<float>(rstd * w);
      add[b * C + c] = Bi ? Bi[c] : 0.f;
    }
  ctx.pool->parallel_for(Bn * S, row_grain(C), [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t b = row / S;
      const float* x = X + row * C;
      float* y = Y + row * C;
      const float* mc = mean_c.data() + b * C;
      const float* m = mul.data() + b * C;
      const float* d = add.data() + b * C;
      for (int64_t c = 0; c < C; ++c) y[c] = (x[c] - mc[c]) * m[c] + d[c];
      if (a.silu)
        for (int64_t c = 0; c < C; ++c) y[c] = silu_f(y[c]);
    }
  });
}

void gated_residual_cpu(const GatedResidualArgs& a, const ExecCtx& ctx) {
  const float* X = static_cast<const float*>(a.x);
  const float* Yi = static_cast<const float*>(a.y);
  const float* G = static_cast<const float*>(a.gate);
  float* O = static_cast<float*>(a.out);
  const int64_t C = a.channels, L = a.len;
  ctx.pool->parallel_for(a.batch * L, row_grain(C), [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const float* x = X + row * C;
      const float* y = Yi + row * C;
      const float* g = G + (a.gate_per_token ? row : row / L) * C;
      float* o = O + row * C;
      for (int64_t c = 0; c < C; ++c) o[c] = x[c] + g[c] * y[c];
    }
  });
}

}  // namespace

TESSERA_REGISTER_KERNEL(cpu_kernels, "norm", NormArgs, norm_cpu);
TESSERA_REGISTER_KERNEL(cpu_kernels, "group_norm", GroupNormArgs, group_norm_cpu);
TESSERA_REGISTER_KERNEL(cpu_kernels, "gated_residual", GatedResidualArgs, gated_residual_cpu);

}  // namespace tessera
