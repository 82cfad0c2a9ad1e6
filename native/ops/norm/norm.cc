// layer_norm / rms_norm (x; weight?, bias?, eps?, scale?, shift?), group_norm (x; groups,
// weight?, bias?, eps?, silu?) and gated_residual (x, y, gate). See kernels/norm.h.
#include <cmath>

#include "ops/op.h"
#include "tessera/kernels/norm.h"

namespace tessera {
namespace {

void check_input_count(const OpCall& c, size_t n, const char* names) {
  if (c.inputs.size() > n)
    throw OpError(c.name, "inputs", "takes " + std::to_string(n) + " tensor(s) (" + names + "), got " +
                                        std::to_string(c.inputs.size()));
}

// x [B, ..., C] with at least 2 dims, as a float-op input.
const Tensor& token_input(const OpCall& c) {
  const Tensor& x = input(c, 0, "x");
  check_compute_dtype(c.name, "x", x);
  check_float_input(c.name, "x", x, x.backend(), x.dtype);
  if (x.ndim() < 2)
    throw OpError(c.name, "x", "must have at least 2 dims [B, ..., C], got shape " + shape_str(x.shape));
  return x;
}

// [B, C] per sample or x's full shape per token; returns whether it is per token.
// A 2-D x makes the two forms the same (one token per sample): that reads as per sample.
bool check_per_sample_or_token(const std::string& op, const char* arg, const Tensor& t, const Tensor& x) {
  check_float_input(op, arg, t, x.backend(), x.dtype);
  const Shape per_sample{x.dim(0), x.dim(-1)};
  if (t.shape == per_sample) return false;
  if (t.shape == x.shape) return true;
  throw OpError(op, arg, "has shape " + shape_str(t.shape) + "; expected [B, C] = " + shape_str(per_sample) +
                             " or x's shape " + shape_str(x.shape));
}

void check_channel_vector(const std::string& op, const char* arg, const Tensor& t, const Tensor& x) {
  check_float_input(op, arg, t, x.backend(), x.dtype);
  check_shape(op, arg, t, {x.dim(-1)});
}

float get_eps(const OpCall& c) {
  const double eps = c.attrs.get_float("eps", 1e-6);
  if (!std::isfinite(eps) || eps < 0)
    throw OpError(c.name, "eps", "must be a finite non-negative number, got " + std::to_string(eps));
  return static_cast<float>(eps);
}

std::vector<Tensor> norm_op(const OpCall& c, NormKind kind) {
  const std::string& op = c.name;
  if (kind == NormKind::Layer) check_attr_names(c, {"weight", "bias", "eps", "scale", "shift"});
  else check_attr_names(c, {"weight", "eps", "scale", "shift"});
  check_input_count(c, 1, "x");
  const Tensor& x = token_input(c);
  const Tensor weight = c.attrs.get_tensor("weight");
  const Tensor bias = kind == NormKind::Layer ? c.attrs.get_tensor("bias") : Tensor{};
  const Tensor scale = c.attrs.get_tensor("scale");
  const Tensor shift = c.attrs.get_tensor("shift");
  if (weight.defined()) check_channel_vector(op, "weight", weight, x);
  if (bias.defined()) check_channel_vector(op, "bias", bias, x);
  const float eps = get_eps(c);
  bool per_token = false;
  if (scale.defined()) per_token = check_per_sample_or_token(op, "scale", scale, x);
  if (shift.defined()) {
    const bool shift_per_token = check_per_sample_or_token(op, "shift", shift, x);
    // The kernel takes one layout for both modulation tensors.
    if (scale.defined() && shift_per_token != per_token)
      throw OpError(op, "shift", "has shape " + shape_str(shift.shape) + " but scale has " +
                                     shape_str(scale.shape) + "; give both per sample [B, C] or both per token");
    per_token = shift_per_token;
  }

  Tensor out = empty(x.backend(), x.shape, x.dtype);
  if (out.numel() == 0) return {out};
  NormArgs args;
  args.x = x.data();
  args.weight = weight.defined() ? weight.data() : nullptr;
  args.bias = bias.defined() ? bias.data() : nullptr;
  args.scale = scale.defined() ? scale.data() : nullptr;
  args.shift = shift.defined() ? shift.data() : nullptr;
  args.out = out.data();
  args.dtype = x.dtype;
  args.kind = kind;
  args.batch = x.dim(0);
  args.channels = x.dim(-1);
  args.len = x.numel() / (args.batch * args.channels);
  args.eps = eps;
  args.mod_per_token = per_token;
  launch(x.backend(), op, "norm", args, {x, weight, bias, scale, shift, out});
  return {out};
}

std::vector<Tensor> layer_norm_op(const OpCall& c) { return norm_op(c, NormKind::Layer); }
std::vector<Tensor> rms_norm_op(const OpCall& c) { return norm_op(c, NormKind::Rms); }

std::vector<Tensor> group_norm_op(const OpCall& c) {
  const std::string& op = c.name;
  check_attr_names(c, {"groups", "weight", "bias", "eps", "silu"});
  check_input_count(c, 1, "x");
  const Tensor& x = token_input(c);
  const int64_t C = x.dim(-1);
  const int64_t groups = c.attrs.require_int("groups");
  check_positive(op, "groups", groups);
  if (C % groups != 0)
    throw OpError(op, "groups", std::to_string(groups) + " does not divide the channel count " + std::to_string(C));
  const Tensor weight = c.attrs.get_tensor("weight");
  const Tensor bias = c.attrs.get_tensor("bias");
  if (weight.defined()) check_channel_vector(op, "weight", weight, x);
  if (bias.defined()) check_channel_vector(op, "bias", bias, x);
  const float eps = get_eps(c);
  const bool silu = c.attrs.get_bool("silu", false);

  Tensor out = empty(x.backend(), x.shape, x.dtype);
  if (out.numel() == 0) return {out};
  GroupNormArgs args;
  args.x = x.data();
  args.weight = weight.defined() ? weight.data() : nullptr;
  args.bias = bias.defined() ? bias.data() : nullptr;
  args.out = out.data();
  args.dtype = x.dtype;
  args.batch = x.dim(0);
  args.channels = C;
  args.spatial = x.numel() / (args.batch * C);
  args.groups = groups;
  args.eps = eps;
  args.silu = silu;
  launch(x.backend(), op, "group_norm", args, {x, weight, bias, out});
  return {out};
}

std::vector<Tensor> gated_residual_op(const OpCall& c) {
  const std::string& op = c.name;
  check_attr_names(c, {});
  check_input_count(c, 3, "x, y, gate");
  const Tensor& x = token_input(c);
  const Tensor& y = input(c, 1, "y");
  const Tensor& gate = input(c, 2, "gate");
  check_float_input(op, "y", y, x.backend(), x.dtype);
  check_shape(op, "y", y, x.shape);
  const bool per_token = check_per_sample_or_token(op, "gate", gate, x);

  Tensor out = empty(x.backend(), x.shape, x.dtype);
  if (out.numel() == 0) return {out};
  GatedResidualArgs args;
  args.x = x.data();
  args.y = y.data();
  args.gate = gate.data();
  args.out = out.data();
  args.dtype = x.dtype;
  args.batch = x.dim(0);
  args.channels = x.dim(-1);
  args.len = x.numel() / (args.batch * args.channels);
  args.gate_per_token = per_token;
  launch(x.backend(), op, "gated_residual", args, {x, y, gate, out});
  return {out};
}

}  // namespace

TESSERA_REGISTER_OP("layer_norm", "LayerNorm over the last dim, then weight/bias and adaLN scale/shift",
                    layer_norm_op);
TESSERA_REGISTER_OP("rms_norm", "RMSNorm over the last dim, then weight and adaLN scale/shift", rms_norm_op);
TESSERA_REGISTER_OP("group_norm", "GroupNorm over channels-last x, then weight/bias and an optional SiLU",
                    group_norm_op);
TESSERA_REGISTER_OP("gated_residual", "x + gate * y with a per-sample or per-token gate", gated_residual_op);

}  // namespace tessera
