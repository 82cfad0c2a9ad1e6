// patch_embed3d(x, weight; bias?, patch?): video [B, F, H, W, C] -> tokens [B, L, D]
// through a Conv3d whose kernel equals its stride (Wan's patch embedding).
// unpatchify3d(x; grid, patch, channels): tokens [B, L, pt*ph*pw*C] -> video.
#include <string>
#include <vector>

#include "ops/op.h"
#include "tessera/kernels/patch.h"

namespace tessera {
namespace {

std::string ints_str(const std::vector<int64_t>& v) {
  std::string r = "[";
  for (size_t i = 0; i < v.size(); ++i) r += (i ? ", " : "") + std::to_string(v[i]);
  return r + "]";
}

// Exactly three positive integers (a patch size or a token grid).
std::vector<int64_t> triple(const OpCall& c, const char* key, const std::vector<int64_t>& v) {
  if (v.size() != 3) throw OpError(c.name, key, "must have 3 entries [t, h, w], got " + ints_str(v));
  for (int64_t x : v)
    if (x <= 0) throw OpError(c.name, key, "must hold positive integers, got " + ints_str(v));
  return v;
}

std::vector<Tensor> patch_embed_op(const OpCall& c) {
  const std::string& op = c.name;
  check_attr_names(c, {"bias", "patch"});
  const Tensor& x = input(c, 0, "x");
  const Tensor& w = input(c, 1, "weight");
  Backend* be = x.backend();
  check_compute_dtype(op, "x", x);
  check_float_input(op, "x", x, be, x.dtype);
  check_ndim(op, "x", x, 5);
  check_float_input(op, "weight", w, be, x.dtype);
  check_ndim(op, "weight", w, 5);
  for (int i = 0; i < 5; ++i)
    if (w.shape[i] <= 0) throw OpError(op, "weight", "must have positive dims, got shape " + shape_str(w.shape));
  const int64_t b = x.shape[0], f = x.shape[1], h = x.shape[2], wd = x.shape[3], ch = x.shape[4];
  const int64_t d = w.shape[0];
  if (w.shape[1] != ch)
    throw OpError(op, "weight", "has shape " + shape_str(w.shape) + " for " + std::to_string(w.shape[1]) +
                                    " channels, but x has " + std::to_string(ch) + " (shape " + shape_str(x.shape) +
                                    ")");
  const std::vector<int64_t> wpatch = {w.shape[2], w.shape[3], w.shape[4]};
  const std::vector<int64_t> patch = c.attrs.has("patch") ? triple(c, "patch", c.attrs.get_ints("patch", {})) : wpatch;
  if (patch != wpatch)
    throw OpError(op, "patch", ints_str(patch) + " does not match the weight's kernel " + ints_str(wpatch) +
                                   " (weight shape " + shape_str(w.shape) + ")");
  const char* names[3] = {"frames", "height", "width"};
  const int64_t extent[3] = {f, h, wd};
  for (int i = 0; i < 3; ++i)
    if (extent[i] <= 0 || extent[i] % patch[i] != 0)
      throw OpError(op, "x", std::string("has ") + names[i] + " " + std::to_string(extent[i]) +
                                 ", which must be a positive multiple of the patch's " + std::to_string(patch[i]) +
                                 " (x shape " + shape_str(x.shape) + ", patch " + ints_str(patch) + ")");
  const Tensor bias = c.attrs.get_tensor("bias");
  if (bias.defined()) {
    check_float_input(op, "bias", bias, be, x.dtype);
    check_shape(op, "bias", bias, {d});
  }
  const int64_t tokens = (f / patch[0]) * (h / patch[1]) * (wd / patch[2]);
  Tensor out = empty(be, {b, tokens, d}, x.dtype);
  if (out.numel() == 0) return {out};
  PatchEmbedArgs a;
  a.x = x.data();
  a.weight = w.data();
  a.bias = bias.defined() ? bias.data() : nullptr;
  a.out = out.data();
  a.dtype = x.dtype;
  a.batch = b;
  a.frames = f;
  a.height = h;
  a.width = wd;
  a.channels = ch;
  a.dim = d;
  a.pt = patch[0];
  a.ph = patch[1];
  a.pw = patch[2];
  launch(be, op, "patch_embed3d", a, {x, w, bias, out});
  return {out};
}

std::vector<Tensor> unpatchify_op(const OpCall& c) {
  const std::string& op = c.name;
  check_attr_names(c, {"grid", "patch", "channels"});
  const Tensor& x = input(c, 0, "x");
  check_compute_dtype(op, "x", x);
  check_contiguous(op, "x", x);
  check_ndim(op, "x", x, 3);
  const std::vector<int64_t> grid = triple(c, "grid", c.attrs.require_ints("grid"));
  const std::vector<int64_t> patch = triple(c, "patch", c.attrs.require_ints("patch"));
  const int64_t ch = c.attrs.require_int("channels");
  check_positive(op, "channels", ch);
  const int64_t per_token = patch[0] * patch[1] * patch[2] * ch;
  if (x.shape[2] != per_token)
    throw OpError(op, "x", "has shape " + shape_str(x.shape) + " but patch " + ints_str(patch) + " x channels " +
                               std::to_string(ch) + " needs a last dim of " + std::to_string(per_token));
  const int64_t tokens = grid[0] * grid[1] * grid[2];
  if (x.shape[1] != tokens)
    throw OpError(op, "grid", ints_str(grid) + " has " + std::to_string(tokens) + " tokens but x has " +
                                  std::to_string(x.shape[1]) + " (shape " + shape_str(x.shape) + ")");
  const int64_t b = x.shape[0];
  Tensor out = empty(x.backend(), {b, grid[0] * patch[0], grid[1] * patch[1], grid[2] * patch[2], ch}, x.dtype);
  if (out.numel() == 0) return {out};
  UnpatchifyArgs a;
  a.x = x.data();
  a.out = out.data();
  a.dtype = x.dtype;
  a.batch = b;
  a.gf = grid[0];
  a.gh = grid[1];
  a.gw = grid[2];
  a.channels = ch;
  a.pt = patch[0];
  a.ph = patch[1];
  a.pw = patch[2];
  launch(x.backend(), op, "unpatchify3d", a, {x, out});
  return {out};
}

}  // namespace

TESSERA_REGISTER_OP("patch_embed3d", "video [B, F, H, W, C] -> patch tokens [B, L, D] (Conv3d, kernel = stride)",
                    patch_embed_op);
TESSERA_REGISTER_OP("unpatchify3d", "patch tokens [B, L, pt*ph*pw*C] -> video [B, F, H, W, C]", unpatchify_op);

}  // namespace tessera
