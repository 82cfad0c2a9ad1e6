// Whether the current device runs this library's sm_90a code (wgmma, TMA, setmaxnreg):
// an sm_90 device with the sm_90a binary loaded. The Hopper kernels (attention_sm90,
// conv3d_wgmma) check it before launching, so an sm_80-only or non-"a" build never
// takes their path.
#pragma once

namespace tessera {

bool device_runs_sm90a();

}  // namespace tessera
