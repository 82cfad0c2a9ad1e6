// CUDA "gated_residual": out = x + gate * y, x/y/out [B, L, C], gate [B, C] (per sample)
// or [B, L, C] (per token). Flat elementwise pass with 16-byte accesses when C and the
// pointers allow.
#include "cuda/common/dispatch.cuh"
#include "cuda/common/dtype.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "tessera/kernels/norm.h"

namespace tessera {
namespace {

// Gate index of flat element e (e = (b * L + l) * C + c).
__device__ __forceinline__ int64_t gate_index(int64_t e, int64_t LC, int64_t C, bool per_token) {
  if (per_token) return e;
  const int64_t b = e / LC;
  return b * C + (e - b * LC) % C;
}

template <class T>
__global__ void gated_residual_kernel(const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ gate,
                                      T* __restrict__ out, int64_t n, int64_t LC, int64_t C, bool per_token,
                                      bool vec) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (vec) {
    constexpr int V = 16 / sizeof(T);
    using P = Pack<T, V>;
    const int64_t nv = n / V;
    for (int64_t i = tid; i < nv; i += stride) {
      const int64_t e = i * V;
      const P px = reinterpret_cast<const P*>(x)[i];
      const P py = reinterpret_cast<const P*>(y)[i];
      // A pack never crosses a row (C % V == 0), so its gate values are contiguous too.
      const P pg = reinterpret_cast<const P*>(gate)[gate_index(e, LC, C, per_token) / V];
      P q;
#pragma unroll
      for (int j = 0; j < V; ++j)
        Elem<T>::store(q.v, j, Elem<T>::load(px.v, j) + Elem<T>::load(pg.v, j) * Elem<T>::load(py.v, j));
      reinterpret_cast<P*>(out)[i] = q;
    }
  } else {
    for (int64_t e = tid; e < n; e += stride)
      Elem<T>::store(out, e,
                     Elem<T>::load(x, e) + Elem<T>::load(gate, gate_index(e, LC, C, per_token)) * Elem<T>::load(y, e));
  }
}

void gated_residual_cuda(const GatedResidualArgs& a, const ExecCtx& ctx) {
  if (a.batch <= 0 || a.len <= 0 || a.channels <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream);
  dispatch_float_t(a.dtype, "gated_residual", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(a.x);
    const T* y = static_cast<const T*>(a.y);
    const T* g = static_cast<const T*>(a.gate);
    T* out = static_cast<T*>(a.out);
    const int64_t n = a.batch * a.len * a.channels;
    constexpr int V = 16 / sizeof(T);
    const bool vec = a.channels % V == 0 && aligned_to(x, 16) && aligned_to(y, 16) && aligned_to(g, 16) &&
                     aligned_to(out, 16);
    constexpr int threads = 256;
    gated_residual_kernel<T><<<grid_for(vec ? n / V : n, threads), threads, 0, s>>>(
        x, y, g, out, n, a.len * a.channels, a.channels, a.gate_per_token, vec);
    TESSERA_CUDA_CHECK_LAUNCH("gated_residual");
  });
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "gated_residual", GatedResidualArgs, gated_residual_cuda);

}  // namespace tessera
