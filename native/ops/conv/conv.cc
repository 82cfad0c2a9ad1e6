// conv3d(x, weight; bias?, stride?, padding?, causal?, prev?) and
// conv2d(x, weight; bias?, stride?, padding?), channels-last, PyTorch weight layout.
// Both launch the "conv3d" kernel; a 2-D conv is a 3-D one over a single frame.
#include <string>
#include <vector>

#include "ops/op.h"
#include "tessera/kernels/conv.h"

namespace tessera {
namespace {

std::string ints_str(const std::vector<int64_t>& v) {
  std::string r = "[";
  for (size_t i = 0; i < v.size(); ++i) r += (i ? ", " : "") + std::to_string(v[i]);
  return r + "]";
}

// `n` per-dim values from a number or an array of 1 or n entries, each >= lo.
std::vector<int64_t> per_dim(const OpCall& c, const char* key, size_t n, int64_t def, int64_t lo) {
  std::vector<int64_t> v = c.attrs.get_ints(key, {def});
  if (v.size() == 1) v.assign(n, v[0]);
  if (v.size() != n)
    throw OpError(c.name, key, "must be a number or " + std::to_string(n) + " numbers, got " + ints_str(v));
  for (int64_t x : v)
    if (x < lo)
      throw OpError(c.name, key, "must hold integers >= " + std::to_string(lo) + ", got " + ints_str(v));
  return v;
}

struct ConvGeometry {
  int64_t batch, frames, height, width, cin, cout, kt, kh, kw;
  int64_t st, sh, sw;
  int64_t pad_front, pad_back, pad_h, pad_w;
};

// Output extent of one dim; the padded input must hold at least one kernel window.
int64_t out_extent(const std::string& op, const char* dim_name, int64_t in, int64_t pad_lo, int64_t pad_hi,
                   int64_t k, int64_t stride) {
  const int64_t padded = in + pad_lo + pad_hi;
  if (padded < k)
    throw OpError(op, "x", std::string("has ") + dim_name + " " + std::to_string(in) + ", which padded to " +
                               std::to_string(padded) + " is smaller than the kernel's " + std::to_string(k));
  return (padded - k) / stride + 1;
}

// Output [B, Fo, Ho, Wo, Cout], or [B, Ho, Wo, Cout] for a 2-D conv (with_frames false).
Tensor run_conv(const OpCall& c, const Tensor& x, const Tensor& w, const ConvGeometry& g, const Tensor& prev,
                bool with_frames) {
  const std::string& op = c.name;
  Backend* be = x.backend();
  const Tensor bias = c.attrs.get_tensor("bias");
  if (bias.defined()) {
    check_float_input(op, "bias", bias, be, x.dtype);
    check_shape(op, "bias", bias, {g.cout});
  }
  const int64_t fo = out_extent(op, "frames", g.frames, g.pad_front, g.pad_back, g.kt, g.st);
  const int64_t ho = out_extent(op, "height", g.height, g.pad_h, g.pad_h, g.kh, g.sh);
  const int64_t wo = out_extent(op, "width", g.width, g.pad_w, g.pad_w, g.kw, g.sw);
  const Shape out_shape = with_frames ? Shape{g.batch, fo, ho, wo, g.cout} : Shape{g.batch, ho, wo, g.cout};
  Tensor out = empty(be, out_shape, x.dtype);
  if (out.numel() == 0) return out;
  Conv3dArgs a;
  a.x = x.data();
  a.prev = prev.defined() ? prev.data() : nullptr;
  a.weight = w.data();
  a.bias = bias.defined() ? bias.data() : nullptr;
  a.out = out.data();
  a.dtype = x.dtype;
  a.batch = g.batch;
  a.frames = g.frames;
  a.height = g.height;
  a.width = g.width;
  a.cin = g.cin;
  a.cout = g.cout;
  a.prev_frames = prev.defined() ? prev.dim(1) : 0;
  a.kt = g.kt;
  a.kh = g.kh;
  a.kw = g.kw;
  a.stride_t = g.st;
  a.stride_h = g.sh;
  a.stride_w = g.sw;
  a.pad_t_front = g.pad_front;
  a.pad_t_back = g.pad_back;
  a.pad_h = g.pad_h;
  a.pad_w = g.pad_w;
  a.out_frames = fo;
  a.out_height = ho;
  a.out_width = wo;
  launch(be, op, "conv3d", a, {x, w, bias, prev, out});
  return out;
}

// x and weight: dtype, device, contiguity, rank, positive extents, matching channels.
void check_operands(const std::string& op, const Tensor& x, const Tensor& w, int ndim) {
  check_compute_dtype(op, "x", x);
  check_float_input(op, "x", x, x.backend(), x.dtype);
  check_ndim(op, "x", x, ndim);
  check_float_input(op, "weight", w, x.backend(), x.dtype);
  check_ndim(op, "weight", w, ndim);
  for (int i = 1; i < ndim; ++i)
    if (x.shape[i] <= 0) throw OpError(op, "x", "must have non-empty spatial and channel dims, got shape " +
                                                   shape_str(x.shape));
  for (int i = 0; i < ndim; ++i)
    if (w.shape[i] <= 0) throw OpError(op, "weight", "must have positive dims, got shape " + shape_str(w.shape));
  if (w.shape[1] != x.shape[ndim - 1])
    throw OpError(op, "weight", "has shape " + shape_str(w.shape) + " for " + std::to_string(w.shape[1]) +
                                    " input channels, but x has " + std::to_string(x.shape[ndim - 1]) +
                                    " (shape " + shape_str(x.shape) + ")");
}

std::vector<Tensor> conv3d_op(const OpCall& c) {
  const std::string& op = c.name;
  check_attr_names(c, {"bias", "stride", "padding", "causal", "prev"});
  const Tensor& x = input(c, 0, "x");
  const Tensor& w = input(c, 1, "weight");
  check_operands(op, x, w, 5);
  ConvGeometry g{x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4], w.shape[0], w.shape[2], w.shape[3],
                 w.shape[4], 1, 1, 1, 0, 0, 0, 0};
  const std::vector<int64_t> stride = per_dim(c, "stride", 3, 1, 1);
  g.st = stride[0];
  g.sh = stride[1];
  g.sw = stride[2];
  const bool causal = c.attrs.get_bool("causal", false);
  std::vector<int64_t> pad = c.attrs.get_ints("padding", {0});
  for (int64_t p : pad)
    if (p < 0) throw OpError(op, "padding", "must hold integers >= 0, got " + ints_str(pad));
  if (causal) {
    // Causal: every frame sees only itself and the past, so all kt-1 frames of time
    // padding go in front; `padding` then only sets space ([h, w] or one number).
    if (pad.size() == 1) pad = {g.kt - 1, 0, pad[0], pad[0]};
    else if (pad.size() == 2) pad = {g.kt - 1, 0, pad[0], pad[1]};
    else if (pad.size() != 4 || pad[0] != g.kt - 1 || pad[1] != 0)
      throw OpError(op, "padding", "with causal must be [h, w], a number, or [" + std::to_string(g.kt - 1) +
                                       ", 0, h, w] (kt - 1 frames in front), got " + ints_str(pad));
  } else {
    if (pad.size() == 1) pad = {pad[0], pad[0], pad[0], pad[0]};
    else if (pad.size() == 3) pad = {pad[0], pad[0], pad[1], pad[2]};
    else if (pad.size() != 4)
      throw OpError(op, "padding", "must be a number, [t, h, w] or [tFront, tBack, h, w], got " + ints_str(pad));
  }
  g.pad_front = pad[0];
  g.pad_back = pad[1];
  g.pad_h = pad[2];
  g.pad_w = pad[3];
  const Tensor prev = c.attrs.get_tensor("prev");
  if (prev.defined()) {
    check_float_input(op, "prev", prev, x.backend(), x.dtype);
    check_ndim(op, "prev", prev, 5);
    if (prev.shape[0] != g.batch || prev.shape[2] != g.height || prev.shape[3] != g.width ||
        prev.shape[4] != g.cin)
      throw OpError(op, "prev", "has shape " + shape_str(prev.shape) + "; expected [" + std::to_string(g.batch) +
                                    ", P, " + std::to_string(g.height) + ", " + std::to_string(g.width) + ", " +
                                    std::to_string(g.cin) + "] (x's batch, height, width and channels)");
    if (prev.shape[1] > g.pad_front)
      throw OpError(op, "prev", "has " + std::to_string(prev.shape[1]) + " frames but only " +
                                    std::to_string(g.pad_front) +
                                    " frames of front padding to fill (kt - 1 when causal)");
  }
  return {run_conv(c, x, w, g, prev, true)};
}

std::vector<Tensor> conv2d_op(const OpCall& c) {
  const std::string& op = c.name;
  check_attr_names(c, {"bias", "stride", "padding"});
  const Tensor& x = input(c, 0, "x");
  const Tensor& w = input(c, 1, "weight");
  check_operands(op, x, w, 4);
  const std::vector<int64_t> stride = per_dim(c, "stride", 2, 1, 1);
  const std::vector<int64_t> pad = per_dim(c, "padding", 2, 0, 0);
  ConvGeometry g{x.shape[0], 1, x.shape[1], x.shape[2], x.shape[3], w.shape[0], 1, w.shape[2], w.shape[3],
                 1, stride[0], stride[1], 0, 0, pad[0], pad[1]};
  return {run_conv(c, x, w, g, Tensor{}, false)};
}

}  // namespace

TESSERA_REGISTER_OP("conv3d", "channels-last 3-D convolution, optionally causal in time with a frame cache",
                    conv3d_op);
TESSERA_REGISTER_OP("conv2d", "channels-last 2-D convolution", conv2d_op);

}  // namespace tessera
