// CUDA "unary": out[i] = f(alpha * x[i] + beta), contiguous, fp32 math, 16-byte accesses
// when both pointers allow them.
#include "cuda/common/activation.cuh"
#include "cuda/common/dispatch.cuh"
#include "cuda/common/dtype.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "tessera/kernels/elementwise.h"

namespace tessera {
namespace {

__device__ __forceinline__ float apply_unary(UnaryOp op, float v) {
  switch (op) {
    case UnaryOp::Identity: return v;
    case UnaryOp::Silu: return silu_d(v);
    case UnaryOp::GeluTanh: return gelu_tanh_d(v);
    case UnaryOp::Gelu: return gelu_d(v);
    case UnaryOp::Exp: return expf(v);
    case UnaryOp::Sigmoid: return sigmoid_d(v);
    case UnaryOp::Square: return v * v;
    case UnaryOp::Sqrt: return sqrtf(v);
    case UnaryOp::Rsqrt: return 1.f / sqrtf(v);
  }
  return v;
}

template <class T>
__global__ void unary_scalar_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n, UnaryOp op,
                                    float alpha, float beta) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    Elem<T>::store(out, i, apply_unary(op, alpha * Elem<T>::load(x, i) + beta));
}

// Both pointers 16-byte aligned: n / V packs, then the tail element by element.
template <class T>
__global__ void unary_vec_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n, UnaryOp op, float alpha,
                                 float beta) {
  constexpr int V = 16 / sizeof(T);
  using P = Pack<T, V>;
  const int64_t nv = n / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = tid; i < nv; i += stride) {
    P p = reinterpret_cast<const P*>(x)[i];
    P q;
#pragma unroll
    for (int j = 0; j < V; ++j) Elem<T>::store(q.v, j, apply_unary(op, alpha * Elem<T>::load(p.v, j) + beta));
    reinterpret_cast<P*>(out)[i] = q;
  }
  for (int64_t i = nv * V + tid; i < n; i += stride)
    Elem<T>::store(out, i, apply_unary(op, alpha * Elem<T>::load(x, i) + beta));
}

void unary_cuda(const UnaryArgs& p, const ExecCtx& ctx) {
  if (p.n <= 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  dispatch_float_t(p.dtype, "unary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(p.x);
    T* out = static_cast<T*>(p.out);
    constexpr int threads = 256;
    if (aligned_to(x, 16) && aligned_to(out, 16)) {
      constexpr int V = 16 / sizeof(T);
      unary_vec_kernel<T><<<grid_for((p.n + V - 1) / V, threads), threads, 0, stream>>>(x, out, p.n, p.op, p.alpha,
                                                                                        p.beta);
    } else {
      unary_scalar_kernel<T><<<grid_for(p.n, threads), threads, 0, stream>>>(x, out, p.n, p.op, p.alpha, p.beta);
    }
    TESSERA_CUDA_CHECK_LAUNCH("unary");
  });
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "unary", UnaryArgs, unary_cuda);

}  // namespace tessera
