// attention(q, k, v; scale?, group?, grid?, rope?, ropeDims?, ropeOffset?, ropeTheta?,
// keyLengths?, bias?): softmax(scale * Q K^T + bias + mask) V per (batch, head), with
// Wan2.1's 3D RoPE and spatial/temporal token grouping (see kernels/attention.h).
#include <cmath>

#include "ops/op.h"
#include "tessera/kernels/attention.h"

namespace tessera {
namespace {

AttnGroup parse_group(const std::string& op, const std::string& s) {
  if (s == "full") return AttnGroup::Full;
  if (s == "spatial") return AttnGroup::Spatial;
  if (s == "temporal") return AttnGroup::Temporal;
  throw OpError(op, "group", "'" + s + "' is not one of full, spatial, temporal");
}

std::string ints_str(const std::vector<int64_t>& v) { return shape_str(Shape(v.begin(), v.end())); }

std::vector<Tensor> attention_op(const OpCall& c) {
  const std::string& op = c.name;
  check_attr_names(c, {"scale", "group", "grid", "rope", "ropeDims", "ropeOffset", "ropeTheta", "keyLengths", "bias"});
  if (c.inputs.size() > 3)
    throw OpError(op, "inputs", "takes 3 tensors (q, k, v), got " + std::to_string(c.inputs.size()));
  const Tensor& q = input(c, 0, "q");
  const Tensor& k = input(c, 1, "k");
  const Tensor& v = input(c, 2, "v");
  Backend* be = q.backend();
  check_compute_dtype(op, "q", q);
  check_float_input(op, "q", q, be, q.dtype);
  check_float_input(op, "k", k, be, q.dtype);
  check_float_input(op, "v", v, be, q.dtype);
  check_ndim(op, "q", q, 4);
  check_ndim(op, "k", k, 4);
  check_ndim(op, "v", v, 4);
  const int64_t B = q.dim(0), Lq = q.dim(1), H = q.dim(2), D = q.dim(3), Lk = k.dim(1);
  if (k.dim(0) != B || k.dim(2) != H || k.dim(3) != D)
    throw OpError(op, "k", "has shape " + shape_str(k.shape) + "; expected [B, Lk, H, D] with B, H, D from q " +
                               shape_str(q.shape));
  check_shape(op, "v", v, k.shape);

  const double scale = c.attrs.get_float("scale", D > 0 ? 1.0 / std::sqrt(static_cast<double>(D)) : 1.0);
  if (!std::isfinite(scale)) throw OpError(op, "scale", "must be a finite number, got " + std::to_string(scale));

  const AttnGroup group = parse_group(op, c.attrs.get_string("group", "full"));
  const bool rope = c.attrs.get_bool("rope", false);
  const char* group_name = group == AttnGroup::Spatial ? "spatial" : "temporal";

  std::vector<int64_t> grid;
  if (c.attrs.has("grid")) {
    grid = c.attrs.get_ints("grid", {});
    if (grid.size() != 3)
      throw OpError(op, "grid", "must be [F, Hh, W] (3 integers), got " + ints_str(grid));
    for (int64_t g : grid)
      if (g <= 0) throw OpError(op, "grid", "must hold positive integers, got " + ints_str(grid));
    if (grid[0] * grid[1] * grid[2] != Lq)
      throw OpError(op, "grid", ints_str(grid) + " describes " + std::to_string(grid[0] * grid[1] * grid[2]) +
                                    " tokens but q has " + std::to_string(Lq));
  }
  if (group != AttnGroup::Full) {
    if (grid.empty())
      throw OpError(op, "grid", std::string("is required for group '") + group_name + "' (the [F, Hh, W] token grid)");
    if (Lk != Lq)
      throw OpError(op, "k", "has " + std::to_string(Lk) + " tokens but group '" + group_name +
                                 "' is self-attention over q's " + std::to_string(Lq));
  }

  AttentionArgs args;
  if (rope) {
    if (grid.empty()) throw OpError(op, "grid", "is required when rope is true (token positions come from it)");
    if (Lk != Lq)
      throw OpError(op, "k", "has " + std::to_string(Lk) + " tokens but rope needs self-attention over q's " +
                                 std::to_string(Lq));
    std::vector<int64_t> dims;
    if (c.attrs.has("ropeDims")) {
      dims = c.attrs.get_ints("ropeDims", {});
      if (dims.size() != 3) throw OpError(op, "ropeDims", "must be [dt, dh, dw] (3 integers), got " + ints_str(dims));
      for (int64_t d : dims)
        if (d < 0 || d % 2 != 0)
          throw OpError(op, "ropeDims", "must hold even non-negative integers, got " + ints_str(dims));
      if (dims[0] + dims[1] + dims[2] != D)
        throw OpError(op, "ropeDims", ints_str(dims) + " sums to " + std::to_string(dims[0] + dims[1] + dims[2]) +
                                          " but the head dim is " + std::to_string(D));
    } else {
      if (D % 2 != 0)
        throw OpError(op, "q", "has head dim " + std::to_string(D) + "; rope needs an even head dim");
      // Wan2.1: [d - 4*(d//6), 2*(d//6), 2*(d//6)].
      const int64_t s = 2 * (D / 6);
      dims = {D - 2 * s, s, s};
    }
    std::vector<int64_t> offset = c.attrs.get_ints("ropeOffset", {0, 0, 0});
    if (offset.size() != 3)
      throw OpError(op, "ropeOffset", "must be [f, h, w] (3 integers), got " + ints_str(offset));
    const double theta = c.attrs.get_float("ropeTheta", 10000.0);
    if (!std::isfinite(theta) || theta <= 0)
      throw OpError(op, "ropeTheta", "must be a positive finite number, got " + std::to_string(theta));
    for (int i = 0; i < 3; ++i) {
      args.rope_dims[i] = dims[i];
      args.rope_offset[i] = offset[i];
    }
    args.rope_theta = static_cast<float>(theta);
  } else {
    for (const char* key : {"ropeDims", "ropeOffset", "ropeTheta"})
      if (c.attrs.has(key)) throw OpError(op, key, "only applies when rope is true");
  }

  const Tensor key_lengths = c.attrs.get_tensor("keyLengths");
  if (key_lengths.defined()) {
    check_same_backend(op, "keyLengths", key_lengths, be);
    check_dtype(op, "keyLengths", key_lengths, {DType::I32});
    check_shape(op, "keyLengths", key_lengths, {B});
    check_contiguous(op, "keyLengths", key_lengths);
  }
  const Tensor bias = c.attrs.get_tensor("bias");
  if (bias.defined()) {
    check_same_backend(op, "bias", bias, be);
    check_dtype(op, "bias", bias, {DType::F32});
    const Shape shared{H, Lq, Lk}, batched{B, H, Lq, Lk};
    if (bias.shape != shared && bias.shape != batched)
      throw OpError(op, "bias", "has shape " + shape_str(bias.shape) + "; expected [H, Lq, Lk] = " +
                                    shape_str(shared) + " or [B, H, Lq, Lk] = " + shape_str(batched));
    check_contiguous(op, "bias", bias);
  }

  Tensor o = empty(be, {B, Lq, H, D}, q.dtype);
  if (o.numel() == 0) return {o};
  args.q = q.data();
  args.k = k.data();
  args.v = v.data();
  args.o = o.data();
  args.dtype = q.dtype;
  args.batch = B;
  args.lq = Lq;
  args.lk = Lk;
  args.heads = H;
  args.head_dim = D;
  args.scale = static_cast<float>(scale);
  args.group = group;
  for (size_t i = 0; i < grid.size(); ++i) args.grid[i] = grid[i];
  args.rope = rope;
  args.key_lengths = key_lengths.defined() ? static_cast<const int32_t*>(key_lengths.data()) : nullptr;
  args.bias = bias.defined() ? static_cast<const float*>(bias.data()) : nullptr;
  args.bias_batch_stride = bias.defined() && bias.ndim() == 4 ? H * Lq * Lk : 0;
  launch(be, op, "attention", args, {q, k, v, o, key_lengths, bias});
  return {o};
}

}  // namespace

TESSERA_REGISTER_OP("attention",
                    "softmax(scale * q k^T + bias) v per head, with Wan 3D RoPE, spatial/temporal grouping and key "
                    "padding",
                    attention_op);

}  // namespace tessera
