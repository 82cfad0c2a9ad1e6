// Memory-bound ops: unary(x; fn, alpha, beta), binary(a, b; fn, alpha, beta) with numpy
// broadcasting, softmax(x) over the last dim, and the layout ops copy(x; dtype?),
// permute(x; dims), slice(x; dim, start, end, step), concat(x0, x1, ...; dim). Every
// layout op is one or more launches of the "copy" kernel between strided views, so a
// backend gets all of them (and casts) from that single kernel.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ops/op.h"
#include "tessera/kernels/elementwise.h"

namespace tessera {
namespace {



float finite_attr(const OpCall& c, const char* key, double def) {
  const double v = c.attrs.get_float(key, def);
  if (!std::isfinite(v)) throw OpError(c.name, key, "must be a finite number, got " + std::to_string(v));
  return static_cast<float>(v);
}

// dim in [-ndim, ndim) -> [0, ndim), python-style.
int normalize_dim(const std::string& op, const char* arg, int64_t dim, int ndim) {
  if (dim < -ndim || dim >= ndim)
    throw OpError(op, arg, std::to_string(dim) + " is out of range for a tensor of " + std::to_string(ndim) +
                               " dims (expected -" + std::to_string(ndim) + " to " + std::to_string(ndim - 1) + ")");
  return static_cast<int>(dim < 0 ? dim + ndim : dim);
}

// ---- unary ----

UnaryOp parse_unary(const std::string& op, const std::string& s) {
  static const std::pair<const char*, UnaryOp> table[] = {
      {"identity", UnaryOp::Identity}, {"silu", UnaryOp::Silu}, {"gelu_tanh", UnaryOp::GeluTanh},
      {"exp", UnaryOp::Exp},           {"sigmoid", UnaryOp::Sigmoid}, {"square", UnaryOp::Square},
      {"sqrt", UnaryOp::Sqrt},         {"rsqrt", UnaryOp::Rsqrt},       {"gelu", UnaryOp::Gelu}};
  std::string names;
  for (const auto& e : table) {
    if (s == e.first) return e.second;
    names += (names.empty() ? "" : ", ") + std::string(e.first);
  }
  throw OpError(op, "fn", "'" + s + "' is not one of " + names);
}

std::vector<Tensor> unary_op(const OpCall& c) {
  check_attr_names(c, {"fn", "alpha", "beta"});
  const Tensor& x = input(c, 0, "x");
  if (!c.attrs.has("fn")) throw OpError(c.name, "fn", "is required");
  const UnaryOp fn = parse_unary(c.name, c.attrs.get_string("fn", ""));
  check_compute_dtype(c.name, "x", x);
  check_contiguous(c.name, "x", x);
  Tensor out = empty(x.backend(), x.shape, x.dtype);
  if (out.numel() == 0) return {out};
  UnaryArgs a;
  a.x = x.data();
  a.out = out.data();
  a.dtype = x.dtype;
  a.n = x.numel();
  a.op = fn;
  a.alpha = finite_attr(c, "alpha", 1.0);
  a.beta = finite_attr(c, "beta", 0.0);
  launch(x.backend(), c.name, "unary", a, {x, out});
  return {out};
}

// ---- binary ----

BinaryOp parse_binary(const std::string& op, const std::string& s) {
  static const std::pair<const char*, BinaryOp> table[] = {
      {"add", BinaryOp::Add},     {"sub", BinaryOp::Sub}, {"mul", BinaryOp::Mul}, {"div", BinaryOp::Div},
      {"axpby", BinaryOp::Axpby}, {"max", BinaryOp::Max}, {"min", BinaryOp::Min}};
  std::string names;
  for (const auto& e : table) {
    if (s == e.first) return e.second;
    names += (names.empty() ? "" : ", ") + std::string(e.first);
  }
  throw OpError(op, "fn", "'" + s + "' is not one of " + names);
}

// t seen with out's shape: leading dims added and size-1 dims repeated by stride 0.
View broadcast_view(const Tensor& t, const Shape& out) {
  View v;
  v.data = t.data();
  v.dtype = t.dtype;
  v.ndim = static_cast<int>(out.size());
  const int lead = v.ndim - t.ndim();
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = out[i];
    const int j = i - lead;
    v.strides[i] = (j < 0 || t.shape[j] == 1) ? 0 : t.strides[j];
  }
  return v;
}

std::vector<Tensor> binary_op(const OpCall& c) {
  check_attr_names(c, {"fn", "alpha", "beta"});
  const Tensor& a = input(c, 0, "a");
  const Tensor& b = input(c, 1, "b");
  if (!c.attrs.has("fn")) throw OpError(c.name, "fn", "is required");
  const BinaryOp fn = parse_binary(c.name, c.attrs.get_string("fn", ""));
  if (fn != BinaryOp::Axpby)
    for (const char* k : {"alpha", "beta"})
      if (c.attrs.has(k)) throw OpError(c.name, k, "only applies to fn 'axpby'");
  Backend* be = a.backend();
  check_compute_dtype(c.name, "a", a);
  check_same_backend(c.name, "b", b, be);
  check_same_dtype(c.name, "b", b, a.dtype);
  // numpy rule: align on the right; each pair of dims is equal or one of them is 1.
  const int nd = std::max(a.ndim(), b.ndim());
  Shape out(nd);
  for (int i = 0; i < nd; ++i) {
    const int ia = i - (nd - a.ndim()), ib = i - (nd - b.ndim());
    const int64_t da = ia < 0 ? 1 : a.shape[ia], db = ib < 0 ? 1 : b.shape[ib];
    if (da != db && da != 1 && db != 1)
      throw OpError(c.name, "b", "has shape " + shape_str(b.shape) + " which does not broadcast with a's shape " +
                                     shape_str(a.shape) + " (dim " + std::to_string(i - nd) + ": " +
                                     std::to_string(da) + " vs " + std::to_string(db) + ")");
    out[i] = da == 1 ? db : da;
  }
  Tensor o = empty(be, out, a.dtype);
  if (o.numel() == 0) return {o};
  BinaryArgs args;
  args.a = broadcast_view(a, out);
  args.b = broadcast_view(b, out);
  args.out = o.data();
  args.dtype = a.dtype;
  args.ndim = nd;
  for (int i = 0; i < nd; ++i) args.shape[i] = out[i];
  args.op = fn;
  args.alpha = finite_attr(c, "alpha", 1.0);
  args.beta = finite_attr(c, "beta", 1.0);
  launch(be, c.name, "binary", args, {a, b, o});
  return {o};
}

// ---- softmax ----

std::vector<Tensor> softmax_op(const OpCall& c) {
  check_attr_names(c, {});
  const Tensor& x = input(c, 0, "x");
  check_compute_dtype(c.name, "x", x);
  check_contiguous(c.name, "x", x);
  if (x.ndim() < 1) throw OpError(c.name, "x", "must have at least 1 dim, got a scalar");
  Tensor out = empty(x.backend(), x.shape, x.dtype);
  if (out.numel() == 0) return {out};
  SoftmaxArgs a;
  a.x = x.data();
  a.out = out.data();
  a.dtype = x.dtype;
  a.cols = x.dim(-1);
  a.rows = x.numel() / a.cols;
  launch(x.backend(), c.name, "softmax", a, {x, out});
  return {out};
}

// ---- layout ops, all through the "copy" kernel ----

void launch_copy(const std::string& op, const View& src, const View& dst, const std::vector<Tensor>& keep,
                 Backend* be) {
  CopyArgs a;
  a.src = src;
  a.dst = dst;
  launch(be, op, "copy", a, keep);
}

// Copies strided `src` (a view over x's storage) into a fresh contiguous tensor.
Tensor copy_view(const std::string& op, const Tensor& x, const Tensor& src, DType dtype) {
  Tensor out = empty(x.backend(), src.shape, dtype);
  if (out.numel() > 0) launch_copy(op, view_of(src), view_of(out), {x, out}, x.backend());
  return out;
}

std::vector<Tensor> copy_op(const OpCall& c) {
  check_attr_names(c, {"dtype"});
  const Tensor& x = input(c, 0, "x");
  DType dt = x.dtype;
  if (c.attrs.has("dtype")) {
    const std::string s = c.attrs.get_string("dtype", "");
    if (!dtype_from_name(s, &dt)) throw OpError(c.name, "dtype", "'" + s + "' is not one of f32, bf16, f16, i32, u8");
  }
  return {copy_view(c.name, x, x, dt)};
}

// The one op that writes into an existing tensor: a graph replays its work on
// fixed memory, so new inputs are copied into the tensors it was captured with.
std::vector<Tensor> assign_op(const OpCall& c) {
  check_attr_names(c, {});
  const Tensor& dst = input(c, 0, "dst");
  const Tensor& src = input(c, 1, "src");
  check_same_backend(c.name, "src", src, dst.backend());
  check_contiguous(c.name, "dst", dst);
  if (src.shape != dst.shape)
    throw OpError(c.name, "src", "has shape " + shape_str(src.shape) + " but dst has shape " + shape_str(dst.shape) +
                                     "; they must match");
  if (src.storage == dst.storage)
    throw OpError(c.name, "src", "shares its storage with dst; assign needs a separate source");
  if (dst.numel() > 0) launch_copy(c.name, view_of(src), view_of(dst), {src, dst}, dst.backend());
  return {dst};
}

std::vector<Tensor> permute_op(const OpCall& c) {
  check_attr_names(c, {"dims"});
  const Tensor& x = input(c, 0, "x");
  const std::vector<int64_t> dims = c.attrs.require_ints("dims");
  const int nd = x.ndim();
  if (static_cast<int>(dims.size()) != nd)
    throw OpError(c.name, "dims", "has " + std::to_string(dims.size()) + " entries but x has " + std::to_string(nd) +
                                      " dims (shape " + shape_str(x.shape) + ")");
  Tensor v = x;
  std::vector<bool> seen(nd, false);
  for (int i = 0; i < nd; ++i) {
    const int d = normalize_dim(c.name, "dims", dims[i], nd);
    if (seen[d]) throw OpError(c.name, "dims", "names dim " + std::to_string(d) + " twice; it must be a permutation");
    seen[d] = true;
    v.shape[i] = x.shape[d];
    v.strides[i] = x.strides[d];
  }
  return {copy_view(c.name, x, v, x.dtype)};
}

std::vector<Tensor> slice_op(const OpCall& c) {
  check_attr_names(c, {"dim", "start", "end", "step"});
  const Tensor& x = input(c, 0, "x");
  if (x.ndim() < 1) throw OpError(c.name, "x", "must have at least 1 dim, got a scalar");
  const int d = normalize_dim(c.name, "dim", c.attrs.require_int("dim"), x.ndim());
  const int64_t size = x.shape[d];
  // Negative indices count from the end, as in Python; anything still outside
  // [0, size] is a mistake, not something to clamp silently.
  auto index = [&](const char* key, int64_t def) {
    const int64_t raw = c.attrs.get_int(key, def);
    const int64_t i = raw < 0 ? raw + size : raw;
    if (i < 0 || i > size)
      throw OpError(c.name, key, std::to_string(raw) + " is out of range for dim " + std::to_string(d) +
                                     " of size " + std::to_string(size) + " (expected -" + std::to_string(size) +
                                     " to " + std::to_string(size) + ")");
    return i;
  };
  const int64_t start = index("start", 0);
  const int64_t end = index("end", size);
  const int64_t step = c.attrs.get_int("step", 1);
  if (step <= 0) throw OpError(c.name, "step", "must be positive, got " + std::to_string(step));
  if (end < start)
    throw OpError(c.name, "end", std::to_string(end) + " is before start " + std::to_string(start) + " (dim " +
                                     std::to_string(d) + " of size " + std::to_string(size) + ")");
  Tensor v = x;
  v.shape[d] = (end - start + step - 1) / step;
  if (v.shape[d] > 0) v.offset += start * x.strides[d];
  v.strides[d] = x.strides[d] * step;
  return {copy_view(c.name, x, v, x.dtype)};
}

std::vector<Tensor> concat_op(const OpCall& c) {
  check_attr_names(c, {"dim"});
  if (c.inputs.empty()) throw OpError(c.name, "x0", "is required: concat needs at least one tensor");
  const Tensor& x0 = input(c, 0, "x0");
  Backend* be = x0.backend();
  if (x0.ndim() < 1) throw OpError(c.name, "x0", "must have at least 1 dim, got a scalar");
  const int d = normalize_dim(c.name, "dim", c.attrs.require_int("dim"), x0.ndim());
  Shape out_shape = x0.shape;
  out_shape[d] = 0;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const std::string name = "x" + std::to_string(i);
    const Tensor& xi = input(c, i, name.c_str());
    check_same_backend(c.name, name.c_str(), xi, be);
    check_same_dtype(c.name, name.c_str(), xi, x0.dtype);
    bool match = xi.ndim() == x0.ndim();
    for (int k = 0; match && k < x0.ndim(); ++k) match = k == d || xi.shape[k] == x0.shape[k];
    if (!match)
      throw OpError(c.name, name, "has shape " + shape_str(xi.shape) + " but must match x0's shape " +
                                      shape_str(x0.shape) + " in every dim except dim " + std::to_string(d));
    out_shape[d] += xi.shape[d];
  }
  Tensor out = empty(be, out_shape, x0.dtype);
  if (out.numel() == 0) return {out};
  const int64_t es = static_cast<int64_t>(dtype_size(out.dtype));
  int64_t at = 0;
  for (const Tensor& xi : c.inputs) {
    if (xi.numel() == 0) continue;
    View dst = view_of(out);
    dst.data = static_cast<char*>(dst.data) + at * out.strides[d] * es;
    dst.shape[d] = xi.shape[d];
    launch_copy(c.name, view_of(xi), dst, {xi, out}, be);
    at += xi.shape[d];
  }
  return {out};
}

}  // namespace

TESSERA_REGISTER_OP("unary", "f(alpha * x + beta) elementwise", unary_op);
TESSERA_REGISTER_OP("binary", "a (op) b elementwise with numpy broadcasting", binary_op);
TESSERA_REGISTER_OP("softmax", "softmax over the last dim", softmax_op);
TESSERA_REGISTER_OP("copy", "contiguous copy of any strided tensor, casting when dtype is given", copy_op);
TESSERA_REGISTER_OP("assign", "copies src into the existing tensor dst (same shape; cast to dst's dtype)", assign_op);
TESSERA_REGISTER_OP("permute", "contiguous copy with dims reordered", permute_op);
TESSERA_REGISTER_OP("slice", "contiguous copy of start:end:step along one dim", slice_op);
TESSERA_REGISTER_OP("concat", "tensors joined along one dim", concat_op);

}  // namespace tessera
