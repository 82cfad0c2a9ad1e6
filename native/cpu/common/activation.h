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

// Exact GELU, x·Φ(x) with the error function, as torch.nn.functional.gelu(approximate="none")
// (CLIP ViT-H's "gelu" and the image projection of Wan's image-to-video models use it).
inline float gelu_f(float x) { return 0.5f * x * (1.f + std::erf(x * 0.7071067811865476f)); }

}  // namespace tessera
