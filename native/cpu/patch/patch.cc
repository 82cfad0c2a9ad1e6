// CPU "patch_embed3d" (f32) and "unpatchify3d".
#include <cstring>

#include "cpu/conv/conv3d_f32.h"
#include "cpu/runtime/cpu_backend.h"
#include "tessera/kernels/patch.h"

namespace tessera {
namespace {

// A patch embedding is a conv whose stride equals its kernel, with no padding; its
// [B, F/pt, H/ph, W/pw, D] output is the [B, L, D] token layout, tokens in f-h-w order.
void patch_embed_cpu(const PatchEmbedArgs& p, const ExecCtx& ctx) {
  if (p.dtype != DType::F32)
    throw OpError("patch_embed3d", "x",
                  std::string("has dtype ") + dtype_name(p.dtype) + "; the CPU backend computes f32 only");
  Conv3dArgs a;
  a.x = p.x;
  a.weight = p.weight;
  a.bias = p.bias;
  a.out = p.out;
  a.dtype = p.dtype;
  a.batch = p.batch;
  a.frames = p.frames;
  a.height = p.height;
  a.width = p.width;
  a.cin = p.channels;
  a.cout = p.dim;
  a.kt = a.stride_t = p.pt;
  a.kh = a.stride_h = p.ph;
  a.kw = a.stride_w = p.pw;
  a.out_frames = p.frames / p.pt;
  a.out_height = p.height / p.ph;
  a.out_width = p.width / p.pw;
  conv3d_f32(a, ctx.pool);
}

void unpatchify_cpu(const UnpatchifyArgs& a, const ExecCtx& ctx) {
  const size_t es = dtype_size(a.dtype);
  const char* x = static_cast<const char*>(a.x);
  char* out = static_cast<char*>(a.out);
  const int64_t frames = a.gf * a.pt, height = a.gh * a.ph, width = a.gw * a.pw;
  const int64_t per_token = a.pt * a.ph * a.pw * a.channels;
  // Within a token, (pw, C) is innermost on both sides: one copy per (pt, ph) row.
  const size_t run = static_cast<size_t>(a.pw * a.channels) * es;
  const int64_t tokens = a.batch * a.gf * a.gh * a.gw;
  ctx.pool->parallel_for(tokens, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      int64_t r = t;
      const int64_t gw = r % a.gw;
      r /= a.gw;
      const int64_t gh = r % a.gh;
      r /= a.gh;
      const int64_t gf = r % a.gf, b = r / a.gf;
      const char* src = x + static_cast<size_t>(t * per_token) * es;
      for (int64_t i = 0; i < a.pt; ++i)
        for (int64_t j = 0; j < a.ph; ++j) {
          const int64_t f = gf * a.pt + i, h = gh * a.ph + j;
          const int64_t dst = (((b * frames + f) * height + h) * width + gw * a.pw) * a.channels;
          std::memcpy(out + static_cast<size_t>(dst) * es, src, run);
          src += run;
        }
    }
  });
}

}  // namespace

TESSERA_REGISTER_KERNEL(cpu_kernels, "patch_embed3d", PatchEmbedArgs, patch_embed_cpu);
TESSERA_REGISTER_KERNEL(cpu_kernels, "unpatchify3d", UnpatchifyArgs, unpatchify_cpu);

}  // namespace tessera
