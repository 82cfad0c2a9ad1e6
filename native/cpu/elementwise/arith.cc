// CPU "unary", "binary" and "softmax" (f32; the op layer rejects other dtypes here).
// The op is chosen outside the loops and each inner loop is a plain stride-1 loop
// where the layout allows, so the compiler vectorises it.
#include <algorithm>
#include <cmath>

#include "cpu/common/activation.h"
#include "cpu/runtime/cpu_backend.h"
#include "tessera/kernels/elementwise.h"

namespace tessera {
namespace {

// Elements per parallel_for chunk for memory-bound loops: large enough that
// scheduling costs nothing, small enough to spread a 1080p frame over every core.
constexpr int64_t kGrain = 1 << 15;

template <class F>
void map_unary(const float* x, float* out, int64_t n, float alpha, float beta, F f, ThreadPool& pool) {
  pool.parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = f(alpha * x[i] + beta);
  });
}

void unary_cpu(const UnaryArgs& p, const ExecCtx& ctx) {
  const float* x = static_cast<const float*>(p.x);
  float* o = static_cast<float*>(p.out);
  ThreadPool& pool = *ctx.pool;
  switch (p.op) {
    case UnaryOp::Identity: return map_unary(x, o, p.n, p.alpha, p.beta, [](float v) { return v; }, pool);
    case UnaryOp::Silu: return map_unary(x, o, p.n, p.alpha, p.beta, silu_f, pool);
    case UnaryOp::GeluTanh: return map_unary(x, o, p.n, p.alpha, p.beta, gelu_tanh_f, pool);
    case UnaryOp::Gelu: return map_unary(x, o, p.n, p.alpha, p.beta, gelu_f, pool);
    case UnaryOp::Exp: return map_unary(x, o, p.n, p.alpha, p.beta, [](float v) { return std::exp(v); }, pool);
    case UnaryOp::Sigmoid:
      return map_unary(x, o, p.n, p.alpha, p.beta, [](float v) { return 1.f / (1.f + std::exp(-v)); }, pool);
    case UnaryOp::Square: return map_unary(x, o, p.n, p.alpha, p.beta, [](float v) { return v * v; }, pool);
    case UnaryOp::Sqrt: return map_unary(x, o, p.n, p.alpha, p.beta, [](float v) { return std::sqrt(v); }, pool);
    case UnaryOp::Rsqrt:
      return map_unary(x, o, p.n, p.alpha, p.beta, [](float v) { return 1.f / std::sqrt(v); }, pool);
  }
}

// ---- binary ----

// The broadcast iteration space with size-1 dims dropped and dims merged wherever
// a, b and out are all contiguous across them: same-shape operands become one flat
// loop and a [N, C] + [C] bias add becomes an outer loop over N.
struct Layout {
  int nd = 0;
  int64_t shape[kMaxDims];
  int64_t sa[kMaxDims], sb[kMaxDims], so[kMaxDims];
};

Layout coalesce(const BinaryArgs& p) {
  Layout l;
  int64_t so[kMaxDims];
  int64_t acc = 1;
  for (int i = p.ndim - 1; i >= 0; --i) {
    so[i] = acc;
    acc *= p.shape[i];
  }
  for (int i = 0; i < p.ndim; ++i) {
    const int64_t n = p.shape[i];
    if (n == 1) continue;
    const int k = l.nd - 1;
    if (k >= 0 && l.sa[k] == p.a.strides[i] * n && l.sb[k] == p.b.strides[i] * n && l.so[k] == so[i] * n) {
      l.shape[k] *= n;
      l.sa[k] = p.a.strides[i];
      l.sb[k] = p.b.strides[i];
      l.so[k] = so[i];
    } else {
      l.shape[l.nd] = n;
      l.sa[l.nd] = p.a.strides[i];
      l.sb[l.nd] = p.b.strides[i];
      l.so[l.nd] = so[i];
      ++l.nd;
    }
  }
  if (l.nd == 0) {
    l.nd = 1;
    l.shape[0] = 1;
    l.sa[0] = l.sb[0] = l.so[0] = 1;
  }
  return l;
}

// One run of the innermost dim; out is always stride 1 there.
template <class F>
inline void binary_row(const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t n, F f) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float bv = *b;
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = *a;
    for (int64_t i = 0; i < n; ++i) o[i] = f(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i * sa], b[i * sb]);
  }
}

template <class F>
void map_binary(const BinaryArgs& p, F f, ThreadPool& pool) {
  const Layout l = coalesce(p);
  const int last = l.nd - 1;
  const int64_t inner = l.shape[last];
  // Long rows are cut into blocks so that one huge flat loop still uses every core.
  const int64_t block = std::min<int64_t>(inner, kGrain);
  const int64_t blocks = (inner + block - 1) / block;
  int64_t outer = 1;
  for (int i = 0; i < last; ++i) outer *= l.shape[i];
  const float* A = static_cast<const float*>(p.a.data);
  const float* B = static_cast<const float*>(p.b.data);
  float* O = static_cast<float*>(p.out);
  pool.parallel_for(outer * blocks, std::max<int64_t>(1, kGrain / block), [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      int64_t r = item / blocks;
      const int64_t j0 = (item % blocks) * block;
      int64_t oa = 0, ob = 0, oo = 0;
      for (int d = last - 1; d >= 0; --d) {
        const int64_t idx = r % l.shape[d];
        r /= l.shape[d];
        oa += idx * l.sa[d];
        ob += idx * l.sb[d];
        oo += idx * l.so[d];
      }
      const int64_t sa = l.sa[last], sb = l.sb[last];
      binary_row(A + oa + j0 * sa, sa, B + ob + j0 * sb, sb, O + oo + j0, std::min(block, inner - j0), f);
    }
  });
}

void binary_cpu(const BinaryArgs& p, const ExecCtx& ctx) {
  ThreadPool& pool = *ctx.pool;
  const float al = p.alpha, be = p.beta;
  switch (p.op) {
    case BinaryOp::Add: return map_binary(p, [](float a, float b) { return a + b; }, pool);
    case BinaryOp::Sub: return map_binary(p, [](float a, float b) { return a - b; }, pool);
    case BinaryOp::Mul: return map_binary(p, [](float a, float b) { return a * b; }, pool);
    case BinaryOp::Div: return map_binary(p, [](float a, float b) { return a / b; }, pool);
    case BinaryOp::Axpby: return map_binary(p, [al, be](float a, float b) { return al * a + be * b; }, pool);
    // NaN propagates from either side, as torch.maximum/minimum and numpy do.
    case BinaryOp::Max: return map_binary(p, [](float a, float b) { return (a > b || a != a) ? a : b; }, pool);
    case BinaryOp::Min: return map_binary(p, [](float a, float b) { return (a < b || a != a) ? a : b; }, pool);
  }
}

// ---- softmax ----

void softmax_cpu(const SoftmaxArgs& p, const ExecCtx& ctx) {
  const float* X = static_cast<const float*>(p.x);
  float* O = static_cast<float*>(p.out);
  const int64_t cols = p.cols;
  ctx.pool->parallel_for(p.rows, std::max<int64_t>(1, kGrain / cols), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* x = X + r * cols;
      float* o = O + r * cols;
      float m = -INFINITY;
      for (int64_t j = 0; j < cols; ++j) m = std::max(m, x[j]);
      // Sum in double: a 4096-wide row of near-equal logits loses bits in fp32.
      double s = 0;
      for (int64_t j = 0; j < cols; ++j) {
        o[j] = std::exp(x[j] - m);
        s += o[j];
      }
      const float inv = static_cast<float>(1.0 / s);
      for (int64_t j = 0; j < cols; ++j) o[j] *= inv;
    }
  });
}

}  // namespace

TESSERA_REGISTER_KERNEL(cpu_kernels, "unary", UnaryArgs, unary_cpu);
TESSERA_REGISTER_KERNEL(cpu_kernels, "binary", BinaryArgs, binary_cpu);
TESSERA_REGISTER_KERNEL(cpu_kernels, "softmax", SoftmaxArgs, softmax_cpu);

}  // namespace tessera
