// CPU "matmul" (f32): plain and transposed row-major operands packed for the
// shared GEMM engine (gemm_f32.h).
#include "cpu/runtime/cpu_backend.h"
#include "gemm_f32.h"
#include "pack_f32.h"
#include "tessera/kernels/gemm.h"

namespace tessera {
namespace {

struct MatmulOperands {
  const float* a;
  const float* b;
  int64_t m, n, k;
  int64_t stride_a, stride_b;
  bool trans_a, trans_b;
};

void pack_a(const void* ctx, int64_t batch, int64_t i0, int64_t rows, int64_t k0, int64_t kc, float* dst) {
  const auto& o = *static_cast<const MatmulOperands*>(ctx);
  const float* a = o.a + batch * o.stride_a;
  if (o.trans_a) {
    // Stored [K, M]: each k gives `rows` contiguous values, already in panel order.
    pack_rows_contiguous<kGemmMR>(a + k0 * o.m + i0, o.m, kc, rows, dst);
  } else {
    pack_rows_transposed(a + i0 * o.k + k0, o.k, rows, kc, kGemmMR, dst);
  }
}

void pack_b(const void* ctx, int64_t batch, int64_t j0, int64_t cols, int64_t k0, int64_t kc, float* dst) {
  const auto& o = *static_cast<const MatmulOperands*>(ctx);
  const float* b = o.b + batch * o.stride_b;
  if (o.trans_b) {
    // Stored [N, K] (a torch.nn.Linear weight): each column of B is a contiguous row.
    pack_rows_transposed(b + j0 * o.k + k0, o.k, cols, kc, kGemmNR, dst);
  } else {
    pack_rows_contiguous<kGemmNR>(b + k0 * o.n + j0, o.n, kc, cols, dst);
  }
}

void matmul_cpu(const MatmulArgs& p, const ExecCtx& ctx) {
  if (p.dtype != DType::F32)
    throw OpError("matmul", "a", std::string("has dtype ") + dtype_name(p.dtype) + "; the CPU backend computes f32 only");
  MatmulOperands o{static_cast<const float*>(p.a), static_cast<const float*>(p.b), p.m, p.n, p.k, p.stride_a,
                   p.stride_b, p.trans_a, p.trans_b};
  GemmDesc d;
  d.batch = p.batch;
  d.m = p.m;
  d.n = p.n;
  d.k = p.k;
  d.pack_a = pack_a;
  d.pack_b = pack_b;
  d.ctx = &o;
  d.c = static_cast<float*>(p.c);
  d.ldc = p.n;
  d.stride_c = p.stride_c;
  d.alpha = p.alpha;
  d.bias = static_cast<const float*>(p.bias);
  d.epilogue = p.epilogue;
  // A 2-D B shared by every batch entry with a plain A: the batches are one tall GEMM,
  // so B is packed once instead of once per entry.
  if (p.batch > 1 && p.stride_b == 0 && !p.trans_a && p.stride_a == p.m * p.k && p.stride_c == p.m * p.n) {
    o.m = p.m * p.batch;
    d.m = o.m;
    d.batch = 1;
  }
  gemm_f32(d, ctx.pool);
}

}  // namespace

TESSERA_REGISTER_KERNEL(cpu_kernels, "matmul", MatmulArgs, matmul_cpu);

}  // namespace tessera
