// CUDA "binary": out = a (op) b, a and b broadcast views of out's shape, out contiguous.
// Dims are collapsed on the host first; when both inputs are then dense (stride 1)
// the kernel runs flat with 16-byte accesses, otherwise each element decomposes its
// index (in 32-bit arithmetic when the tensor allows it).
#include "cuda/common/dispatch.cuh"
#include "cuda/common/dtype.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "tessera/kernels/elementwise.h"

namespace tessera {
namespace {

__device__ __forceinline__ float apply_binary(BinaryOp op, float a, float b, float alpha, float beta) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Axpby: return alpha * a + beta * b;
    // NaN propagates from either side (torch.maximum/minimum), as the CPU does.
    case BinaryOp::Max: return (a > b || a != a) ? a : b;
    case BinaryOp::Min: return (a < b || a != a) ? a : b;
  }
  return a;
}

template <class T>
__global__ void binary_flat_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out, int64_t n,
                                   BinaryOp op, float alpha, float beta, bool vec) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vec) {
    constexpr int V = 16 / sizeof(T);
    using P = Pack<T, V>;
    const int64_t nv = n / V;
    for (int64_t i = tid; i < nv; i += stride) {
      const P pa = reinterpret_cast<const P*>(a)[i];
      const P pb = reinterpret_cast<const P*>(b)[i];
      P q;
#pragma unroll
      for (int j = 0; j < V; ++j)
        Elem<T>::store(q.v, j, apply_binary(op, Elem<T>::load(pa.v, j), Elem<T>::load(pb.v, j), alpha, beta));
      reinterpret_cast<P*>(out)[i] = q;
    }
    done = nv * V;
  }
  for (int64_t i = done + tid; i < n; i += stride)
    Elem<T>::store(out, i, apply_binary(op, Elem<T>::load(a, i), Elem<T>::load(b, i), alpha, beta));
}

template <class T, class Idx>
__global__ void binary_strided_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                                      StridedLayout L, int64_t n, BinaryOp op, float alpha, float beta) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[2];
    strided_offsets<2, Idx>(L, static_cast<Idx>(i), off);
    Elem<T>::store(out, i, apply_binary(op, Elem<T>::load(a, off[0]), Elem<T>::load(b, off[1]), alpha, beta));
  }
}

void binary_cuda(const BinaryArgs& p, const ExecCtx& ctx) {
  if (p.ndim < 0 || p.ndim > kMaxDims || p.a.ndim != p.ndim || p.b.ndim != p.ndim)
    throw DeviceError("CUDA kernel 'binary': operand ranks do not match the output rank");
  const int64_t* strides[2] = {p.a.strides, p.b.strides};
  StridedLayout L;
  const int64_t n = collapse_layout(p.ndim, p.shape, strides, 2, &L);
  if (n <= 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  dispatch_float_t(p.dtype, "binary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* a = static_cast<const T*>(p.a.data);
    const T* b = static_cast<const T*>(p.b.data);
    T* out = static_cast<T*>(p.out);
    constexpr int threads = 256;
    if (L.ndim == 1 && L.stride[0][0] == 1 && L.stride[1][0] == 1) {
      const bool vec = aligned_to(a, 16) && aligned_to(b, 16) && aligned_to(out, 16);
      const int64_t work = vec ? (n + 16 / sizeof(T) - 1) / (16 / sizeof(T)) : n;
      binary_flat_kernel<T><<<grid_for(work, threads), threads, 0, stream>>>(a, b, out, n, p.op, p.alpha, p.beta,
                                                                             vec);
    } else if (n < (int64_t{1} << 31)) {
      binary_strided_kernel<T, uint32_t><<<grid_for(n, threads), threads, 0, stream>>>(a, b, out, L, n, p.op,
                                                                                       p.alpha, p.beta);
    } else {
      binary_strided_kernel<T, uint64_t><<<grid_for(n, threads), threads, 0, stream>>>(a, b, out, L, n, p.op,
                                                                                       p.alpha, p.beta);
    }
    TESSERA_CUDA_CHECK_LAUNCH("binary");
  });
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "binary", BinaryArgs, binary_cuda);

}  // namespace tessera
