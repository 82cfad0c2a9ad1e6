// bf16 instantiations of the Hopper attention kernel (attention_sm90.cuh). Split from the
// f16 ones so the two compile in parallel.
#include "attention_sm90.cuh"

namespace tessera {
namespace sm90 {

void launch_wgmma_bf16(int D, const Maps& m, const AttnParams& p, dim3 grid, cudaStream_t stream) {
  using T = __nv_bfloat16;
  if (D == 128) launch_wgmma<T, 128, consumer_warpgroups(128), kBC, kStages>(m, p, grid, stream);
  else launch_wgmma<T, 64, consumer_warpgroups(64), kBC, kStages>(m, p, grid, stream);
}

}  // namespace sm90
}  // namespace tessera
