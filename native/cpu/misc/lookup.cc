// CPU "upsample_nearest", "embedding" and "timestep_embedding". The first two only
// move elements, so they copy raw bytes and serve every float dtype exactly.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/runtime/cpu_backend.h"
#include "tessera/kernels/embed.h"
#include "tessera/kernels/resample.h"

namespace tessera {
namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per parallel_for chunk

void upsample_cpu(const UpsampleArgs& p, const ExecCtx& ctx) {
  const int64_t es = static_cast<int64_t>(dtype_size(p.dtype));
  const int64_t fo = p.frames * p.st, ho = p.height * p.sh, wo = p.width * p.sw;
  const int64_t pixel = p.channels * es;  // bytes
  const char* X = static_cast<const char*>(p.x);
  char* O = static_cast<char*>(p.out);
  // One task per output row (b, f, h); each output pixel copies its source pixel.
  ctx.pool->parallel_for(p.batch * fo * ho, std::max<int64_t>(1, kGrain / (wo * p.channels)),
                         [&](int64_t lo, int64_t hi) {
                           for (int64_t r = lo; r < hi; ++r) {
                             const int64_t h = r % ho, f = (r / ho) % fo, b = r / (ho * fo);
                             const char* src =
                                 X + ((b * p.frames + f / p.st) * p.height + h / p.sh) * p.width * pixel;
                             char* dst = O + r * wo * pixel;
                             for (int64_t w = 0; w < wo; ++w) std::memcpy(dst + w * pixel, src + (w / p.sw) * pixel, pixel);
                           }
                         });
}

void embedding_cpu(const EmbeddingArgs& p, const ExecCtx& ctx) {
  const int64_t row = p.dim * static_cast<int64_t>(dtype_size(p.dtype));  // bytes
  const char* T = static_cast<const char*>(p.table);
  char* O = static_cast<char*>(p.out);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  ctx.pool->parallel_for(p.n, std::max<int64_t>(1, kGrain / p.dim), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t id = p.ids[i];
      char* dst = O + i * row;
      if (id >= 0 && id < p.vocab) {
        std::memcpy(dst, T + id * row, row);
      } else {
        for (int64_t j = 0; j < p.dim; ++j) store_from_f32(dst, p.dtype, j, nan);
      }
    }
  });
}

void timestep_embedding_cpu(const TimestepEmbeddingArgs& p, const ExecCtx& ctx) {
  const int64_t half = p.dim / 2;
  // Same order of fp32 operations as diffusers' get_timestep_embedding.
  std::vector<float> freq(half);
  const float neg_log = -std::log(p.max_period);
  for (int64_t j = 0; j < half; ++j)
    freq[j] = std::exp(neg_log * static_cast<float>(j) / (static_cast<float>(half) - p.freq_shift));
  const int64_t first = p.cos_first ? 0 : half, second = p.cos_first ? half : 0;
  ctx.pool->parallel_for(p.n, std::max<int64_t>(1, kGrain / p.dim), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t base = i * p.dim;
      for (int64_t j = 0; j < half; ++j) {
        const float arg = p.t[i] * freq[j];
        store_from_f32(p.out, p.dtype, base + first + j, std::cos(arg));
        store_from_f32(p.out, p.dtype, base + second + j, std::sin(arg));
      }
    }
  });
}

}  // namespace

TESSERA_REGISTER_KERNEL(cpu_kernels, "upsample_nearest", UpsampleArgs, upsample_cpu);
TESSERA_REGISTER_KERNEL(cpu_kernels, "embedding", EmbeddingArgs, embedding_cpu);
TESSERA_REGISTER_KERNEL(cpu_kernels, "timestep_embedding", TimestepEmbeddingArgs, timestep_embedding_cpu);

}  // namespace tessera
