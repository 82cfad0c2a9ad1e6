// Tensor factories and lookups: fill(; device, dtype, shape, value), randn(; device,
// shape, seed, offset, dtype), upsample_nearest(x; scale), embedding(ids, table),
// timestep_embedding(t; dim, maxPeriod, freqShift, cosFirst, dtype).
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/op.h"
#include "tessera/devices.h"
#include "tessera/kernels/elementwise.h"
#include "tessera/kernels/embed.h"
#include "tessera/kernels/resample.h"

namespace tessera {
namespace {

void check_float_dtype(const std::string& op, const char* arg, const Tensor& t) {
  check_dtype(op, arg, t, {DType::F32, DType::BF16, DType::F16});
}

Backend* device_attr(const OpCall& c) {
  const std::string name = c.attrs.get_string("device", "cpu");
  try {
    return get_backend(name);
  } catch (const std::invalid_argument& e) {
    throw OpError(c.name, "device", std::string("is not usable: ") + e.what());
  }
}

DType dtype_attr(const OpCall& c, bool floats_only) {
  const std::string s = c.attrs.get_string("dtype", "f32");
  DType d;
  if (!dtype_from_name(s, &d))
    throw OpError(c.name, "dtype", "'" + s + "' is not one of " + (floats_only ? "f32, bf16, f16" : "f32, bf16, f16, i32, u8"));
  if (floats_only && !dtype_is_float(d))
    throw OpError(c.name, "dtype", "'" + s + "' is not a float dtype; expected one of f32, bf16, f16");
  return d;
}

Shape shape_attr(const OpCall& c) {
  const std::vector<int64_t> s = c.attrs.require_ints("shape");
  if (s.size() > static_cast<size_t>(kMaxDims))
    throw OpError(c.name, "shape", "has " + std::to_string(s.size()) + " dims; at most " + std::to_string(kMaxDims) +
                                       " are supported");
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw OpError(c.name, "shape", shape_str(s) + " has a negative dim");
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / 16 / d)
      throw OpError(c.name, "shape", shape_str(s) + " has too many elements");
    n *= d;
  }
  return s;
}

// ---- fill ----

std::vector<Tensor> fill_op(const OpCall& c) {
  check_attr_names(c, {"device", "dtype", "shape", "value"});
  Backend* be = device_attr(c);
  const DType dt = dtype_attr(c, false);
  const Shape shape = shape_attr(c);
  const double v = c.attrs.require_float("value");
  // Integer fills take exact values: a fractional or out-of-range value is a bug upstream.
  if (dt == DType::I32 && !(std::floor(v) == v && v >= -2147483648.0 && v <= 2147483647.0))
    throw OpError(c.name, "value", std::to_string(v) + " is not an i32 (an integer in [-2^31, 2^31 - 1])");
  if (dt == DType::U8 && !(std::floor(v) == v && v >= 0 && v <= 255))
    throw OpError(c.name, "value", std::to_string(v) + " is not a u8 (an integer in [0, 255])");
  Tensor out = empty(be, shape, dt);
  if (out.numel() == 0) return {out};
  FillArgs a;
  a.out = out.data();
  a.dtype = dt;
  a.n = out.numel();
  a.value = v;
  launch(be, c.name, "fill", a, {out});
  return {out};
}

// ---- randn ----

std::vector<Tensor> randn_op(const OpCall& c) {
  check_attr_names(c, {"device", "dtype", "shape", "seed", "offset"});
  Backend* be = device_attr(c);
  const DType dt = dtype_attr(c, true);
  const Shape shape = shape_attr(c);
  // get_int already limits both to 2^53, the integers a JS number holds exactly.
  const int64_t seed = c.attrs.require_int("seed");
  if (seed < 0) throw OpError(c.name, "seed", "must be a non-negative integer, got " + std::to_string(seed));
  const int64_t offset = c.attrs.get_int("offset", 0);
  if (offset < 0) throw OpError(c.name, "offset", "must be a non-negative integer, got " + std::to_string(offset));
  Tensor out = empty(be, shape, dt);
  if (out.numel() == 0) return {out};
  RandnArgs a;
  a.out = out.data();
  a.dtype = dt;
  a.n = out.numel();
  a.seed = static_cast<uint64_t>(seed);
  a.offset = static_cast<uint64_t>(offset);
  launch(be, c.name, "randn", a, {out});
  return {out};
}

// ---- upsample_nearest ----

std::vector<Tensor> upsample_nearest_op(const OpCall& c) {
  check_attr_names(c, {"scale"});
  const Tensor& x = input(c, 0, "x");
  check_float_dtype(c.name, "x", x);
  check_ndim_range(c.name, "x", x, 4, 5);
  check_contiguous(c.name, "x", x);
  const bool video = x.ndim() == 5;
  const std::vector<int64_t> s = c.attrs.require_ints("scale");
  if (s.size() != (video ? 3u : 2u))
    throw OpError(c.name, "scale", std::string("must be ") + (video ? "[st, sh, sw] for video [B, F, H, W, C]" :
                                                                       "[sh, sw] for images [B, H, W, C]") +
                                       ", got " + std::to_string(s.size()) + " entries");
  for (int64_t v : s)
    if (v < 1) throw OpError(c.name, "scale", shape_str(s) + " must hold positive integers");
  UpsampleArgs a;
  a.batch = x.shape[0];
  a.frames = video ? x.shape[1] : 1;
  a.height = x.dim(-3);
  a.width = x.dim(-2);
  a.channels = x.dim(-1);
  a.st = video ? s[0] : 1;
  a.sh = s[s.size() - 2];
  a.sw = s[s.size() - 1];
  Shape out_shape = video ? Shape{a.batch, a.frames * a.st, a.height * a.sh, a.width * a.sw, a.channels}
                          : Shape{a.batch, a.height * a.sh, a.width * a.sw, a.channels};
  Tensor out = empty(x.backend(), out_shape, x.dtype);
  if (out.numel() == 0) return {out};
  a.x = x.data();
  a.out = out.data();
  a.dtype = x.dtype;
  launch(x.backend(), c.name, "upsample_nearest", a, {x, out});
  return {out};
}

// ---- embedding ----

std::vector<Tensor> embedding_op(const OpCall& c) {
  check_attr_names(c, {});
  const Tensor& ids = input(c, 0, "ids");
  const Tensor& table = input(c, 1, "table");
  Backend* be = ids.backend();
  check_dtype(c.name, "ids", ids, {DType::I32});
  check_contiguous(c.name, "ids", ids);
  check_same_backend(c.name, "table", table, be);
  // Floats only: an unknown id becomes a NaN row, which integer tables cannot hold.
  check_float_dtype(c.name, "table", table);
  check_ndim(c.name, "table", table, 2);
  check_contiguous(c.name, "table", table);
  if (ids.ndim() >= kMaxDims)
    throw OpError(c.name, "ids", "has " + std::to_string(ids.ndim()) + " dims; at most " +
                                     std::to_string(kMaxDims - 1) + " are supported");
  Shape out_shape = ids.shape;
  out_shape.push_back(table.shape[1]);
  Tensor out = empty(be, out_shape, table.dtype);
  if (out.numel() == 0) return {out};
  EmbeddingArgs a;
  a.ids = static_cast<const int32_t*>(ids.data());
  a.table = table.data();
  a.out = out.data();
  a.dtype = table.dtype;
  a.n = ids.numel();
  a.vocab = table.shape[0];
  a.dim = table.shape[1];
  launch(be, c.name, "embedding", a, {ids, table, out});
  return {out};
}

// ---- timestep_embedding ----

std::vector<Tensor> timestep_embedding_op(const OpCall& c) {
  check_attr_names(c, {"dim", "maxPeriod", "freqShift", "cosFirst", "dtype"});
  const Tensor& t = input(c, 0, "t");
  check_dtype(c.name, "t", t, {DType::F32});
  check_ndim(c.name, "t", t, 1);
  check_contiguous(c.name, "t", t);
  const int64_t dim = c.attrs.require_int("dim");
  if (dim <= 0 || dim % 2 != 0) throw OpError(c.name, "dim", "must be a positive even integer, got " + std::to_string(dim));
  const double max_period = c.attrs.get_float("maxPeriod", 10000.0);
  if (!(std::isfinite(max_period) && max_period > 0))
    throw OpError(c.name, "maxPeriod", "must be a positive finite number, got " + std::to_string(max_period));
  const double shift = c.attrs.get_float("freqShift", 0.0);
  // The frequencies divide by half - freqShift.
  if (!(std::isfinite(shift) && shift < static_cast<double>(dim / 2)))
    throw OpError(c.name, "freqShift", "must be a finite number below dim / 2 = " + std::to_string(dim / 2) +
                                           ", got " + std::to_string(shift));
  const DType dt = dtype_attr(c, true);
  Tensor out = empty(t.backend(), {t.shape[0], dim}, dt);
  if (out.numel() == 0) return {out};
  TimestepEmbeddingArgs a;
  a.t = static_cast<const float*>(t.data());
  a.out = out.data();
  a.dtype = dt;
  a.n = t.shape[0];
  a.dim = dim;
  a.max_period = static_cast<float>(max_period);
  a.freq_shift = static_cast<float>(shift);
  a.cos_first = c.attrs.get_bool("cosFirst", true);
  launch(t.backend(), c.name, "timestep_embedding", a, {t, out});
  return {out};
}

}  // namespace

TESSERA_REGISTER_OP("fill", "a new tensor with every element = value", fill_op);
TESSERA_REGISTER_OP("randn", "standard normal noise, identical on every backend for a seed", randn_op);
TESSERA_REGISTER_OP("upsample_nearest", "nearest-neighbour upsampling of channels-last images or video",
                    upsample_nearest_op);
TESSERA_REGISTER_OP("embedding", "rows of a table picked by i32 ids", embedding_op);
TESSERA_REGISTER_OP("timestep_embedding", "sinusoidal embedding of diffusion timesteps", timestep_embedding_op);

}  // namespace tessera
