// Device-side element access shared by CUDA kernels: load any float dtype as fp32,
// store fp32 into any dtype, with the same rounding as the host (dtype.h).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include <string>

#include "tessera/dtype.h"
#include "tessera/error.h"

namespace tessera {

template <class T>
struct Elem;
template <>
struct Elem<float> {
  __device__ __forceinline__ static float load(const float* p, int64_t i) { return p[i]; }
  __device__ __forceinline__ static void store(float* p, int64_t i, float v) { p[i] = v; }
};
template <>
struct Elem<__nv_bfloat16> {
  __device__ __forceinline__ static float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
  __device__ __forceinline__ static void store(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
};
template <>
struct Elem<__half> {
  __device__ __forceinline__ static float load(const __half* p, int64_t i) { return __half2float(p[i]); }
  __device__ __forceinline__ static void store(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }
};

// Any dtype by run-time tag (for copy/cast kernels).
__device__ __forceinline__ float load_any(const void* p, DType d, int64_t i) {
  switch (d) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case DType::F16: return __half2float(static_cast<const __half*>(p)[i]);
    case DType::I32: return static_cast<float>(static_cast<const int32_t*>(p)[i]);
    case DType::U8: return static_cast<float>(static_cast<const uint8_t*>(p)[i]);
  }
  return 0.f;
}

__device__ __forceinline__ void store_any(void* p, DType d, int64_t i, float v) {
  switch (d) {
    case DType::F32: static_cast<float*>(p)[i] = v; break;
    case DType::BF16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
    case DType::F16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    case DType::I32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); break;
    case DType::U8: static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(fminf(fmaxf(v, 0.f), 255.f)); break;
  }
}

// Calls f.template operator()<T>() with T the C++ type of a float dtype.
template <class F>
void dispatch_float(DType d, F&& f) {
  switch (d) {
    case DType::F32: f.template operator()<float>(); break;
    case DType::BF16: f.template operator()<__nv_bfloat16>(); break;
    case DType::F16: f.template operator()<__half>(); break;
    default: throw DeviceError(std::string("CUDA kernel got non-float dtype ") + dtype_name(d));
  }
}

inline unsigned blocks_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b > 65535LL * 16 ? 65535LL * 16 : (b < 1 ? 1 : b));
}

}  // namespace tessera
