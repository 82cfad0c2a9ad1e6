// CPU "fill" and "randn": every dtype the op layer admits (fill: all five; randn:
// the float ones), so factories need no cast afterwards on the CPU either.
#include <algorithm>

#include "cpu/runtime/cpu_backend.h"
#include "tessera/kernels/elementwise.h"
#include "tessera/kernels/embed.h"
#include "tessera/rng.h"

namespace tessera {
namespace {

template <class T>
void fill_typed(void* out, int64_t n, T v, ThreadPool& pool) {
  T* o = static_cast<T*>(out);
  pool.parallel_for(n, 1 << 16, [&](int64_t lo, int64_t hi) { std::fill(o + lo, o + hi, v); });
}

void fill_cpu(const FillArgs& p, const ExecCtx& ctx) {
  const float f = static_cast<float>(p.value);
  switch (p.dtype) {
    case DType::F32: return fill_typed<float>(p.out, p.n, f, *ctx.pool);
    case DType::BF16: return fill_typed<uint16_t>(p.out, p.n, f32_to_bf16(f), *ctx.pool);
    case DType::F16: return fill_typed<uint16_t>(p.out, p.n, f32_to_f16(f), *ctx.pool);
    // The op layer has checked that the value is an integer in range.
    case DType::I32: return fill_typed<int32_t>(p.out, p.n, static_cast<int32_t>(p.value), *ctx.pool);
    case DType::U8: return fill_typed<uint8_t>(p.out, p.n, static_cast<uint8_t>(p.value), *ctx.pool);
  }
}

// Each element is a pure function of (seed, offset + i), so any split over threads
// gives the same numbers, and so does the CUDA kernel.
template <class Store>
void randn_typed(const RandnArgs& p, ThreadPool& pool, Store store) {
  pool.parallel_for(p.n, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) store(i, gaussian_at(p.seed, p.offset + static_cast<uint64_t>(i)));
  });
}

void randn_cpu(const RandnArgs& p, const ExecCtx& ctx) {
  float* f = static_cast<float*>(p.out);
  uint16_t* h = static_cast<uint16_t*>(p.out);
  switch (p.dtype) {
    case DType::F32: return randn_typed(p, *ctx.pool, [f](int64_t i, float v) { f[i] = v; });
    case DType::BF16: return randn_typed(p, *ctx.pool, [h](int64_t i, float v) { h[i] = f32_to_bf16(v); });
    case DType::F16: return randn_typed(p, *ctx.pool, [h](int64_t i, float v) { h[i] = f32_to_f16(v); });
    default: return randn_typed(p, *ctx.pool, [&p](int64_t i, float v) { store_from_f32(p.out, p.dtype, i, v); });
  }
}

}  // namespace

TESSERA_REGISTER_KERNEL(cpu_kernels, "fill", FillArgs, fill_cpu);
TESSERA_REGISTER_KERNEL(cpu_kernels, "randn", RandnArgs, randn_cpu);

}  // namespace tessera
