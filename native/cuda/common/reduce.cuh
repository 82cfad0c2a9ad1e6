// Warp/block reductions and Welford merging shared by the CUDA kernels (fp32).
// Block helpers require blockDim.x to be a multiple of 32 (at most 1024) and every
// thread of the block to call them (they contain __syncthreads).
#pragma once
#include <cuda_runtime.h>

namespace tessera {

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block, result returned to every thread. `scratch` holds >= 33 floats.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float r = lane < nw ? scratch[lane] : 0.f;
    r = warp_sum(r);
    if (lane == 0) scratch[32] = r;
  }
  __syncthreads();
  return scratch[32];
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float r = lane < nw ? scratch[lane] : -INFINITY;
    r = warp_max(r);
    if (lane == 0) scratch[32] = r;
  }
  __syncthreads();
  return scratch[32];
}

// Running (count, mean, sum of squared deviations); merged with Chan et al.
// Trivial type (usable in __shared__ arrays): zero-initialise with WelfordState{0.f, 0.f, 0.f}.
struct WelfordState {
  float n, mean, m2;
};

__device__ __forceinline__ void welford_push(WelfordState& s, float x) {
  s.n += 1.f;
  const float d = x - s.mean;
  s.mean += d / s.n;
  s.m2 += d * (x - s.mean);
}

__device__ __forceinline__ WelfordState welford_merge(const WelfordState& a, const WelfordState& b) {
  if (b.n == 0.f) return a;
  if (a.n == 0.f) return b;
  WelfordState r{0.f, 0.f, 0.f};
  r.n = a.n + b.n;
  const float d = b.mean - a.mean;
  const float fb = b.n / r.n;
  r.mean = a.mean + d * fb;
  r.m2 = a.m2 + b.m2 + d * d * a.n * fb;
  return r;
}

__device__ __forceinline__ WelfordState warp_welford(WelfordState s) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    WelfordState t{0.f, 0.f, 0.f};
    t.n = __shfl_xor_sync(0xffffffffu, s.n, o);
    t.mean = __shfl_xor_sync(0xffffffffu, s.mean, o);
    t.m2 = __shfl_xor_sync(0xffffffffu, s.m2, o);
    s = welford_merge(s, t);
  }
  return s;
}

// Block-wide Welford, result returned to every thread. `scratch` holds >= 33 states.
__device__ __forceinline__ WelfordState block_welford(WelfordState s, WelfordState* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  s = warp_welford(s);
  __syncthreads();
  if (lane == 0) scratch[warp] = s;
  __syncthreads();
  if (warp == 0) {
    WelfordState r = lane < nw ? scratch[lane] : WelfordState{0.f, 0.f, 0.f};
    r = warp_welford(r);
    if (lane == 0) scratch[32] = r;
  }
  __syncthreads();
  return scratch[32];
}

}  // namespace tessera
