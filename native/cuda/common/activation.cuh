// Scalar activations on the device (fp32), written as the CPU's activation.h so the
// two backends agree to rounding.
#pragma once
#include <cuda_runtime.h>

namespace tessera {

__device__ __forceinline__ float silu_d(float x) { return x / (1.f + expf(-x)); }

__device__ __forceinline__ float sigmoid_d(float x) { return 1.f / (1.f + expf(-x)); }

// tanh approximation, as torch.nn.functional.gelu(approximate="tanh").
__device__ __forceinline__ float gelu_tanh_d(float x) {
  const float k0 = 0.7978845608028654f, k1 = 0.044715f;
  return 0.5f * x * (1.f + tanhf(k0 * (x + k1 * x * x * x)));
}

// Exact GELU, x·Φ(x) with the error function, as torch.nn.functional.gelu(approximate="none").
__device__ __forceinline__ float gelu_d(float x) { return 0.5f * x * (1.f + erff(x * 0.7071067811865476f)); }

}  // namespace tessera
