// CPU "matmul" (f32). Row-parallel, k-outer loop so the inner loop streams a row of
// B and vectorises.
#include <vector>

#include "../common/activation.h"
#include "../runtime/cpu_backend.h"
#include "tessera/kernels/gemm.h"

namespace tessera {
namespace {

void matmul_cpu(const MatmulArgs& p, const ExecCtx& ctx) {
  const float* A = static_cast<const float*>(p.a);
  const float* B = static_cast<const float*>(p.b);
  const float* bias = static_cast<const float*>(p.bias);
  float* C = static_cast<float*>(p.c);
  const int64_t M = p.m, N = p.n, K = p.k;
  ctx.pool->parallel_for(p.batch * M, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> brow(p.trans_b ? K : 0);
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t bi = r / M, i = r % M;
      const float* a = A + bi * p.stride_a;
      const float* b = B + bi * p.stride_b;
      float* c = C + bi * p.stride_c + i * N;
      for (int64_t j = 0; j < N; ++j) c[j] = 0.f;
      for (int64_t kk = 0; kk < K; ++kk) {
        const float av = p.trans_a ? a[kk * M + i] : a[i * K + kk];
        if (p.trans_b) {
          for (int64_t j = 0; j < N; ++j) c[j] += av * b[j * K + kk];
        } else {
          const float* brw = b + kk * N;
          for (int64_t j = 0; j < N; ++j) c[j] += av * brw[j];
        }
      }
      for (int64_t j = 0; j < N; ++j) {
        float v = p.alpha * c[j] + (bias ? bias[j] : 0.f);
        if (p.epilogue == Epilogue::GeluTanh) v = gelu_tanh_f(v);
        else if (p.epilogue == Epilogue::Silu) v = silu_f(v);
        c[j] = v;
      }
    }
  });
}

}  // namespace

TESSERA_REGISTER_KERNEL(cpu_kernels, "matmul", MatmulArgs, matmul_cpu);

}  // namespace tessera
