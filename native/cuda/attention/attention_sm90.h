// Hopper (sm_90a) attention forward: wgmma + TMA + warp specialisation (attention_sm90.cu,
// design in NOTES.md). Called from the "attention" kernel's CUDA entry (attention.cu).
#pragma once
#include <cuda_runtime.h>

#include "tessera/kernels/attention.h"

namespace tessera {

// What the dispatcher hands the wgmma kernel from the kernel choice.
struct WgmmaAttnPlan {
  bool trace = false;  // stderr line per call: this kernel, or why not
};

// Runs bf16/f16 attention `a` with the wgmma kernel when it covers the case (and the device
// runs sm_90a code) and returns true; returns false with nothing launched otherwise, and the
// caller runs its own kernel. q and k are the tensors to read (RoPE already applied: the
// pre-pass copies when a.rope is set); everything else comes from `a`.
bool attention_sm90(const AttentionArgs& a, const void* q, const void* k, const WgmmaAttnPlan& plan,
                    cudaStream_t stream);

}  // namespace tessera
