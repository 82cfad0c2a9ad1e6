// Launcher of the warp-specialised, persistent Hopper conv kernel (conv3d_wgmma_ws.cu).
// conv3d_wgmma picks it over the all-threads kernel when K is long enough to pipeline.
#pragma once
#include <cuda_runtime.h>

#include "conv_igemm.cuh"

namespace tessera {
namespace wgconv {

struct WsOptions {
  bool tma_weight = true;  // B by TMA (one tile load per stage) instead of the producers' cp.async
  bool trace = false;      // stderr line per launch: grid, tiles, TMA or not
};

// Output tile 128 x bn (bn = 192, 128, 96 or 64); needs p.pair_out (even Cout, 4-byte
// aligned out). Sets p.tiles_n. `bf16` false means f16; `sms`: the device's SMs (the persistent grid).
void launch_ws(bool bf16, int bn, igemm::Params p, const WsOptions& o, int sms, cudaStream_t s, const char* name);

}  // namespace wgconv
}  // namespace tessera
