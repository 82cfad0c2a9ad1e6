// The driver's cuTensorMapEncodeTiled, found once through the runtime (the library links only
// libcudart): TMA tensor maps for the Hopper kernels (attention_sm90, conv3d_wgmma_ws).
#pragma once
#include <cuda.h>
#include <cudaTypedefs.h>

namespace tessera {

// Null when the driver does not have it (then the kernels that need a map are not taken).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder();

}  // namespace tessera
