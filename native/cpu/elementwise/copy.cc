// CPU "copy": strided src -> strided dst of the same shape, converting between any
// two of f32/bf16/f16/i32/u8. Behind contiguous(), cast, permute, slice and concat.
#include <algorithm>

#include "cpu/runtime/cpu_backend.h"
#include "tessera/kernels/elementwise.h"

namespace tessera {
namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per parallel_for chunk

// Element types with a conversion to and from f32. Every pair goes through f32,
// which is exact wherever the destination can hold the value (an i32 -> u8 value
// above 2^24 rounds but is clamped to 255 anyway); equal dtypes never convert.
struct F32T {
  using T = float;
  static float load(T v) { return v; }
  static T store(float v) { return v; }
};
struct BF16T {
  using T = uint16_t;
  static float load(T v) { return bf16_to_f32(v); }
  static T store(float v) { return f32_to_bf16(v); }
};
struct F16T {
  using T = uint16_t;
  static float load(T v) { return f16_to_f32(v); }
  static T store(float v) { return f32_to_f16(v); }
};
// Float -> integer truncates toward zero and saturates, NaN -> 0 (as CUDA's cvt.rzi.sat).
struct I32T {
  using T = int32_t;
  static float load(T v) { return static_cast<float>(v); }
  static T store(float v) {
    if (!(v == v)) return 0;
    if (v >= 2147483648.f) return 2147483647;
    if (v <= -2147483648.f) return -2147483647 - 1;
    return static_cast<int32_t>(v);
  }
};
struct U8T {
  using T = uint8_t;
  static float load(T v) { return static_cast<float>(v); }
  static T store(float v) {
    if (!(v > 0.f)) return 0;
    if (v >= 255.f) return 255;
    return static_cast<uint8_t>(v);
  }
};
// Raw element moves for equal dtypes, by width: bit-exact for every dtype, NaN payloads included.
template <class U>
struct RawT {
  using T = U;
};

template <class S, class D>
struct Convert {
  static typename D::T run(typename S::T v) { return D::store(S::load(v)); }
};
template <class U>
struct Convert<RawT<U>, RawT<U>> {
  static U run(U v) { return v; }
};

// The copy's iteration space with size-1 dims dropped and dims merged where both
// sides are contiguous across them, so a contiguous copy is one flat loop.
struct Layout {
  int nd = 0;
  int64_t shape[kMaxDims];
  int64_t ss[kMaxDims], ds[kMaxDims];
};

Layout coalesce(const View& s, const View& d) {
  Layout l;
  for (int i = 0; i < s.ndim; ++i) {
    const int64_t n = s.shape[i];
    if (n == 1) continue;
    const int k = l.nd - 1;
    if (k >= 0 && l.ss[k] == s.strides[i] * n && l.ds[k] == d.strides[i] * n) {
      l.shape[k] *= n;
      l.ss[k] = s.strides[i];
      l.ds[k] = d.strides[i];
    } else {
      l.shape[l.nd] = n;
      l.ss[l.nd] = s.strides[i];
      l.ds[l.nd] = d.strides[i];
      ++l.nd;
    }
  }
  if (l.nd == 0) {
    l.nd = 1;
    l.shape[0] = 1;
    l.ss[0] = l.ds[0] = 1;
  }
  return l;
}

template <class S, class D>
void copy_typed(const CopyArgs& p, ThreadPool& pool) {
  using ST = typename S::T;
  using DT = typename D::T;
  const Layout l = coalesce(p.src, p.dst);
  const int last = l.nd - 1;
  const int64_t inner = l.shape[last];
  const int64_t block = std::min<int64_t>(inner, kGrain);
  const int64_t blocks = (inner + block - 1) / block;
  int64_t outer = 1;
  for (int i = 0; i < last; ++i) outer *= l.shape[i];
  const ST* src = static_cast<const ST*>(p.src.data);
  DT* dst = static_cast<DT*>(p.dst.data);
  const int64_t sin = l.ss[last], din = l.ds[last];
  pool.parallel_for(outer * blocks, std::max<int64_t>(1, kGrain / block), [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      int64_t r = item / blocks;
      const int64_t j0 = (item % blocks) * block;
      const int64_t n = std::min(block, inner - j0);
      int64_t os = j0 * sin, od = j0 * din;
      for (int d = last - 1; d >= 0; --d) {
        const int64_t idx = r % l.shape[d];
        r /= l.shape[d];
        os += idx * l.ss[d];
        od += idx * l.ds[d];
      }
      const ST* s = src + os;
      DT* o = dst + od;
      if (sin == 1 && din == 1) {
        for (int64_t j = 0; j < n; ++j) o[j] = Convert<S, D>::run(s[j]);
      } else {
        for (int64_t j = 0; j < n; ++j) o[j * din] = Convert<S, D>::run(s[j * sin]);
      }
    }
  });
}

template <class S>
void copy_from(const CopyArgs& p, ThreadPool& pool) {
  switch (p.dst.dtype) {
    case DType::F32: return copy_typed<S, F32T>(p, pool);
    case DType::BF16: return copy_typed<S, BF16T>(p, pool);
    case DType::F16: return copy_typed<S, F16T>(p, pool);
    case DType::I32: return copy_typed<S, I32T>(p, pool);
    case DType::U8: return copy_typed<S, U8T>(p, pool);
  }
}

void copy_cpu(const CopyArgs& p, const ExecCtx& ctx) {
  ThreadPool& pool = *ctx.pool;
  if (p.src.dtype == p.dst.dtype) {
    switch (dtype_size(p.src.dtype)) {
      case 1: return copy_typed<RawT<uint8_t>, RawT<uint8_t>>(p, pool);
      case 2: return copy_typed<RawT<uint16_t>, RawT<uint16_t>>(p, pool);
      default: return copy_typed<RawT<uint32_t>, RawT<uint32_t>>(p, pool);
    }
  }
  switch (p.src.dtype) {
    case DType::F32: return copy_from<F32T>(p, pool);
    case DType::BF16: return copy_from<BF16T>(p, pool);
    case DType::F16: return copy_from<F16T>(p, pool);
    case DType::I32: return copy_from<I32T>(p, pool);
    case DType::U8: return copy_from<U8T>(p, pool);
  }
}

}  // namespace

TESSERA_REGISTER_KERNEL(cpu_kernels, "copy", CopyArgs, copy_cpu);

}  // namespace tessera
