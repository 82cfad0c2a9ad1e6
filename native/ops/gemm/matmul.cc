// matmul(a, b; bias?, transA?, transB?, alpha?, epilogue?) and linear(x, weight; bias?).
// a: [..., M, K] (or [..., K, M] with transA); b: [K, N] shared by every batch, or
// [..., K, N] with the same leading dims as a ([N, K] / [..., N, K] with transB).
#include "ops/op.h"
#include "tessera/kernels/gemm.h"

namespace tessera {
namespace {

Epilogue parse_epilogue(const std::string& op, const std::string& s) {
  if (s == "none") return Epilogue::None;
  if (s == "gelu_tanh") return Epilogue::GeluTanh;
  if (s == "silu") return Epilogue::Silu;
  throw OpError(op, "epilogue", "'" + s + "' is not one of none, gelu_tanh, silu");
}

Tensor matmul_impl(const std::string& op, const Tensor& a, const Tensor& b, const Tensor& bias, bool ta, bool tb,
                   float alpha, Epilogue epi) {
  Backend* be = a.backend();
  check_compute_dtype(op, "a", a);
  check_float_input(op, "a", a, be, a.dtype);
  check_float_input(op, "b", b, be, a.dtype);
  if (a.ndim() < 2) throw OpError(op, "a", "must have at least 2 dims, got shape " + shape_str(a.shape));
  if (b.ndim() < 2) throw OpError(op, "b", "must have at least 2 dims, got shape " + shape_str(b.shape));
  const int64_t m = ta ? a.dim(-1) : a.dim(-2);
  const int64_t k = ta ? a.dim(-2) : a.dim(-1);
  const int64_t kb = tb ? b.dim(-1) : b.dim(-2);
  const int64_t n = tb ? b.dim(-2) : b.dim(-1);
  if (k != kb)
    throw OpError(op, "b", "has shape " + shape_str(b.shape) + " whose inner dim " + std::to_string(kb) +
                               " does not match a's " + std::to_string(k) + " (a is " + shape_str(a.shape) + ")");
  Shape batch_dims(a.shape.begin(), a.shape.end() - 2);
  int64_t batch = shape_numel(batch_dims);
  bool b_batched = b.ndim() > 2;
  if (b_batched) {
    Shape bb(b.shape.begin(), b.shape.end() - 2);
    if (bb != batch_dims)
      throw OpError(op, "b", "has batch dims " + shape_str(bb) + " but a has " + shape_str(batch_dims) +
                                 "; b must be 2-D or share a's batch dims");
  }
  if (bias.defined()) {
    check_float_input(op, "bias", bias, be, a.dtype);
    check_shape(op, "bias", bias, {n});
  }
  Shape out_shape = batch_dims;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor c = empty(be, out_shape, a.dtype);
  if (c.numel() == 0) return c;
  MatmulArgs args;
  args.a = a.data();
  args.b = b.data();
  args.bias = bias.defined() ? bias.data() : nullptr;
  args.c = c.data();
  args.dtype = a.dtype;
  args.batch = batch;
  args.m = m;
  args.n = n;
  args.k = k;
  args.trans_a = ta;
  args.trans_b = tb;
  args.stride_a = m * k;
  args.stride_b = b_batched ? k * n : 0;
  args.stride_c = m * n;
  args.alpha = alpha;
  args.epilogue = epi;
  launch(be, op, "matmul", args, {a, b, bias, c});
  return c;
}

std::vector<Tensor> matmul_op(const OpCall& c) {
  const Tensor& a = input(c, 0, "a");
  const Tensor& b = input(c, 1, "b");
  return {matmul_impl(c.name, a, b, c.attrs.get_tensor("bias"), c.attrs.get_bool("transA", false),
                      c.attrs.get_bool("transB", false), static_cast<float>(c.attrs.get_float("alpha", 1.0)),
                      parse_epilogue(c.name, c.attrs.get_string("epilogue", "none")))};
}

// linear(x [..., in], weight [out, in]; bias [out]) = x @ weight^T + bias, as torch.nn.Linear.
std::vector<Tensor> linear_op(const OpCall& c) {
  const Tensor& x = input(c, 0, "x");
  const Tensor& w = input(c, 1, "weight");
  check_ndim(c.name, "weight", w, 2);
  if (x.ndim() < 1) throw OpError(c.name, "x", "must have at least 1 dim");
  if (x.dim(-1) != w.dim(1))
    throw OpError(c.name, "weight", "has shape " + shape_str(w.shape) + " but x's last dim is " +
                                        std::to_string(x.dim(-1)));
  check_contiguous(c.name, "x", x);
  // Fold every leading dim of x into M: one GEMM instead of a batch of small ones.
  Tensor x2 = x;
  x2.shape = {x.numel() / x.dim(-1), x.dim(-1)};
  x2.strides = contiguous_strides(x2.shape);
  Tensor y = matmul_impl(c.name, x2, w, c.attrs.get_tensor("bias"), false, true, 1.f,
                         parse_epilogue(c.name, c.attrs.get_string("epilogue", "none")));
  Shape out = x.shape;
  out.back() = w.dim(0);
  y.shape = out;
  y.strides = contiguous_strides(out);
  return {y};
}

}  // namespace

TESSERA_REGISTER_OP("matmul", "batched matrix product with optional transposes, bias and activation", matmul_op);
TESSERA_REGISTER_OP("linear", "x @ weight^T + bias over the last dim (torch.nn.Linear)", linear_op);

}  // namespace tessera
