// CUDA "copy" (strided -> strided, with dtype conversion) and "fill".
//
// copy: dims are collapsed jointly for src and dst. Same dtype: a raw element copy
// (bit exact, NaN payloads kept), a cudaMemcpyAsync when both sides are dense. Different
// dtypes: value conversion through fp32 exactly as the CPU's load_as_f32/store_from_f32
// (float -> i32 truncates toward zero and saturates, NaN -> 0; -> u8 clamps to
// [0, 255] and truncates, NaN -> 0; NaN payloads as dtype.h), as the CPU's copy.cc.
// fill: the element's bit pattern is built on the host with dtype.h's conversions and
// written with 16-byte stores.
#include <cmath>
#include <cstring>

#include "cuda/common/dtype.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "tessera/kernels/elementwise.h"

namespace tessera {
namespace {

__device__ __forceinline__ int32_t f32_to_i32_trunc(float v) {
  if (!(v == v)) return 0;
  if (v >= 2147483648.f) return INT32_MAX;
  if (v <= -2147483648.f) return INT32_MIN;
  return static_cast<int32_t>(v);
}

// NaN payloads follow the host's dtype.h conversions bit for bit (the device intrinsics
// would return canonical NaNs instead).
__device__ __forceinline__ float f16_bits_to_f32(uint16_t h) {
  if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0)
    return __uint_as_float((static_cast<uint32_t>(h & 0x8000u) << 16) | 0x7f800000u | ((h & 0x3ffu) << 13));
  return __half2float(__ushort_as_half(h));
}

__device__ __forceinline__ uint16_t f32_to_bf16_bits(float v) {
  const uint32_t u = __float_as_uint(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return __bfloat16_as_ushort(__float2bfloat16_rn(v));
}

__device__ __forceinline__ uint16_t f32_to_f16_bits(float v) {
  const uint32_t u = __float_as_uint(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>(((u >> 16) & 0x8000u) | 0x7e00u);
  return __half_as_ushort(__float2half_rn(v));
}

__device__ __forceinline__ float load_conv(const void* p, DType d, int64_t i) {
  switch (d) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::BF16: return __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(p)[i]) << 16);
    case DType::F16: return f16_bits_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::I32: return static_cast<float>(static_cast<const int32_t*>(p)[i]);
    case DType::U8: return static_cast<float>(static_cast<const uint8_t*>(p)[i]);
  }
  return 0.f;
}

__device__ __forceinline__ void store_conv(void* p, DType d, int64_t i, float v) {
  switch (d) {
    case DType::F32: static_cast<float*>(p)[i] = v; break;
    case DType::BF16: static_cast<uint16_t*>(p)[i] = f32_to_bf16_bits(v); break;
    case DType::F16: static_cast<uint16_t*>(p)[i] = f32_to_f16_bits(v); break;
    case DType::I32: static_cast<int32_t*>(p)[i] = f32_to_i32_trunc(v); break;
    case DType::U8:
      static_cast<uint8_t*>(p)[i] = !(v > 0.f) ? uint8_t{0} : (v >= 255.f ? uint8_t{255} : static_cast<uint8_t>(v));
      break;
  }
}

// ---- same dtype: raw element copies ----

template <class E>
__global__ void copy_dense_kernel(const E* __restrict__ src, E* __restrict__ dst, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = src[i];
}

template <class E, class Idx>
__global__ void copy_strided_kernel(const E* __restrict__ src, E* __restrict__ dst, StridedLayout L, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[2];
    strided_offsets<2, Idx>(L, static_cast<Idx>(i), off);
    dst[off[1]] = src[off[0]];
  }
}

// Innermost dim dense on both sides and wide: each thread moves `W`-element chunks
// (W * sizeof(E) bytes) of a row; requires the row length and base offsets aligned.
template <class E, class Idx>
__global__ void copy_rows_kernel(const E* __restrict__ src, E* __restrict__ dst, StridedLayout L, int64_t n) {
  // L here describes chunks: its last dim counts chunks of 16 bytes with stride 1.
  using C = uint4;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[2];
    strided_offsets<2, Idx>(L, static_cast<Idx>(i), off);
    *reinterpret_cast<C*>(dst + off[1]) = *reinterpret_cast<const C*>(src + off[0]);
  }
}

// ---- different dtypes ----

template <class Idx>
__global__ void convert_strided_kernel(const void* __restrict__ src, DType sd, void* __restrict__ dst, DType dd,
                                       StridedLayout L, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[2];
    strided_offsets<2, Idx>(L, static_cast<Idx>(i), off);
    store_conv(dst, dd, off[1], load_conv(src, sd, off[0]));
  }
}

__global__ void convert_dense_kernel(const void* __restrict__ src, DType sd, void* __restrict__ dst, DType dd,
                                     int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    store_conv(dst, dd, i, load_conv(src, sd, i));
}

template <class E>
void launch_raw(const CopyArgs& p, const StridedLayout& L, int64_t n, cudaStream_t stream) {
  constexpr int threads = 256;
  const E* src = static_cast<const E*>(p.src.data);
  E* dst = static_cast<E*>(p.dst.data);
  // Rows of whole 16-byte chunks: innermost dim dense on both sides.
  constexpr int64_t W = 16 / sizeof(E);
  const int d = L.ndim - 1;
  if (L.ndim >= 2 && L.stride[0][d] == 1 && L.stride[1][d] == 1 && L.shape[d] % W == 0 && aligned_to(src, 16) &&
      aligned_to(dst, 16)) {
    bool ok = true;
    for (int k = 0; k < d; ++k)
      if (L.stride[0][k] % W != 0 || L.stride[1][k] % W != 0) ok = false;
    if (ok) {
      StridedLayout C = L;
      C.shape[d] = L.shape[d] / W;
      C.stride[0][d] = W;  // offsets stay in elements of E
      C.stride[1][d] = W;
      const int64_t nc = n / W;
      if (nc < (int64_t{1} << 31))
        copy_rows_kernel<E, uint32_t><<<grid_for(nc, threads), threads, 0, stream>>>(src, dst, C, nc);
      else
        copy_rows_kernel<E, uint64_t><<<grid_for(nc, threads), threads, 0, stream>>>(src, dst, C, nc);
      TESSERA_CUDA_CHECK_LAUNCH("copy");
      return;
    }
  }
  if (n < (int64_t{1} << 31))
    copy_strided_kernel<E, uint32_t><<<grid_for(n, threads), threads, 0, stream>>>(src, dst, L, n);
  else
    copy_strided_kernel<E, uint64_t><<<grid_for(n, threads), threads, 0, stream>>>(src, dst, L, n);
  TESSERA_CUDA_CHECK_LAUNCH("copy");
}

void copy_cuda(const CopyArgs& p, const ExecCtx& ctx) {
  if (p.src.ndim != p.dst.ndim || p.src.ndim < 0 || p.src.ndim > kMaxDims)
    throw DeviceError("CUDA kernel 'copy': src and dst ranks differ");
  for (int i = 0; i < p.src.ndim; ++i)
    if (p.src.shape[i] != p.dst.shape[i]) throw DeviceError("CUDA kernel 'copy': src and dst shapes differ");
  const int64_t* strides[2] = {p.src.strides, p.dst.strides};
  StridedLayout L;
  const int64_t n = collapse_layout(p.src.ndim, p.src.shape, strides, 2, &L);
  if (n <= 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  const bool dense = L.ndim == 1 && L.stride[0][0] == 1 && L.stride[1][0] == 1;
  constexpr int threads = 256;
  if (p.src.dtype == p.dst.dtype) {
    const size_t es = dtype_size(p.src.dtype);
    if (dense) {
      TESSERA_CUDA_CHECK(cudaMemcpyAsync(p.dst.data, p.src.data, static_cast<size_t>(n) * es,
                                         cudaMemcpyDeviceToDevice, stream));
      return;
    }
    switch (es) {
      case 1: launch_raw<uint8_t>(p, L, n, stream); break;
      case 2: launch_raw<uint16_t>(p, L, n, stream); break;
      case 4: launch_raw<uint32_t>(p, L, n, stream); break;
      default: throw DeviceError("CUDA kernel 'copy': unsupported element size");
    }
    return;
  }
  if (dense) {
    convert_dense_kernel<<<grid_for(n, threads), threads, 0, stream>>>(p.src.data, p.src.dtype, p.dst.data,
                                                                      p.dst.dtype, n);
  } else if (n < (int64_t{1} << 31)) {
    convert_strided_kernel<uint32_t><<<grid_for(n, threads), threads, 0, stream>>>(p.src.data, p.src.dtype,
                                                                                   p.dst.data, p.dst.dtype, L, n);
  } else {
    convert_strided_kernel<uint64_t><<<grid_for(n, threads), threads, 0, stream>>>(p.src.data, p.src.dtype,
                                                                                   p.dst.data, p.dst.dtype, L, n);
  }
  TESSERA_CUDA_CHECK_LAUNCH("copy");
}

// ---- fill ----

template <class E>
__global__ void fill_kernel(E* __restrict__ out, int64_t n, E v, bool vec) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vec) {
    constexpr int V = 16 / sizeof(E);
    Pack<E, V> pk;
#pragma unroll
    for (int j = 0; j < V; ++j) pk.v[j] = v;
    const int64_t nv = n / V;
    for (int64_t i = tid; i < nv; i += stride) reinterpret_cast<Pack<E, V>*>(out)[i] = pk;
    done = nv * V;
  }
  for (int64_t i = done + tid; i < n; i += stride) out[i] = v;
}

// The stored bit pattern of `value` in dtype d (host side, dtype.h rounding).
uint32_t fill_bits(DType d, double value) {
  switch (d) {
    case DType::F32: {
      const float f = static_cast<float>(value);
      uint32_t u;
      std::memcpy(&u, &f, 4);
      return u;
    }
    case DType::BF16: return f32_to_bf16(static_cast<float>(value));
    case DType::F16: return f32_to_f16(static_cast<float>(value));
    case DType::I32: {
      // Exact for every integer in range; fractions truncate toward zero.
      int32_t i;
      if (std::isnan(value)) i = 0;
      else if (value <= -2147483648.0) i = INT32_MIN;
      else if (value >= 2147483647.0) i = INT32_MAX;
      else i = static_cast<int32_t>(value);
      return static_cast<uint32_t>(i);
    }
    case DType::U8: {
      double c = std::isnan(value) ? 0.0 : (value < 0.0 ? 0.0 : (value > 255.0 ? 255.0 : value));
      return static_cast<uint8_t>(c);
    }
  }
  return 0;
}

template <class E>
void launch_fill(void* out, int64_t n, uint32_t bits, cudaStream_t stream) {
  constexpr int threads = 256;
  E* o = static_cast<E*>(out);
  const bool vec = aligned_to(o, 16);
  const int64_t work = vec ? (n + 16 / sizeof(E) - 1) / (16 / sizeof(E)) : n;
  fill_kernel<E><<<grid_for(work, threads), threads, 0, stream>>>(o, n, static_cast<E>(bits), vec);
  TESSERA_CUDA_CHECK_LAUNCH("fill");
}

void fill_cuda(const FillArgs& p, const ExecCtx& ctx) {
  if (p.n <= 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  const uint32_t bits = fill_bits(p.dtype, p.value);
  const size_t es = dtype_size(p.dtype);
  // Every byte of the pattern equal (zero, most often): a memset.
  bool same_bytes = true;
  for (size_t k = 1; k < es; ++k)
    if (((bits >> (8 * k)) & 0xffu) != (bits & 0xffu)) same_bytes = false;
  if (same_bytes) {
    TESSERA_CUDA_CHECK(cudaMemsetAsync(p.out, static_cast<int>(bits & 0xffu), static_cast<size_t>(p.n) * es, stream));
    return;
  }
  switch (es) {
    case 2: launch_fill<uint16_t>(p.out, p.n, bits, stream); break;
    case 4: launch_fill<uint32_t>(p.out, p.n, bits, stream); break;
    default: throw DeviceError("CUDA kernel 'fill': unsupported element size");
  }
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "copy", CopyArgs, copy_cuda);
TESSERA_REGISTER_KERNEL(cuda_kernels, "fill", FillArgs, fill_cuda);

}  // namespace tessera
