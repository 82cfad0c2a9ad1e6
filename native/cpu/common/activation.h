// Scalar activations shared by CPU kernels (fp32).
#pragma once
#include <cmath>

namespace tessera {

inline float silu_f(float x) { return x / (1.f + std::exp(-x)); }

// tanh approximation, as torch.nn.functional.gelu(approximate="tanh").
inline float gelu_tanh_f(float x) {
  const float k0 = 0.7978845608028654f, k1 = 0.044715f;
  return 0.5f * x * (1.f + std::tanh(k0 * (x + k1 * x * x * x)));
}

}  // namespace tessera
