// f16 instantiations of the Hopper attention kernel (attention_sm90.cuh).
#include "attention_sm90.cuh"

namespace tessera {
namespace sm90 {

bool launch_wgmma_f16(int D, int ncwg, int var, const Maps& m, const AttnParams& p, dim3 grid, cudaStream_t stream) {
  using T = __half;
  if (D == 128 && ncwg == 2) {
    switch (var) {
      case kVarBasic: launch_wgmma<T, 128, 2, kBC, 2, kVarBasic>(m, p, grid, stream); return true;
      case kVarPingpong: launch_wgmma<T, 128, 2, kBC, 2, kVarPingpong>(m, p, grid, stream); return true;
      default: return false;
    }
  }
  if (D == 64 && ncwg == 3) {
    switch (var) {
      case kVarBasic: launch_wgmma<T, 64, 3, kBC, 2, kVarBasic>(m, p, grid, stream); return true;
      case kVarPingpong: launch_wgmma<T, 64, 3, kBC, 2, kVarPingpong>(m, p, grid, stream); return true;
      default: return false;
    }
  }
  return false;
}

}  // namespace sm90
}  // namespace tessera
