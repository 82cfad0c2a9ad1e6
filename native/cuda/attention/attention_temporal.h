// Temporal-only attention for groups of at most 32 frames (attention_temporal.cu): a CUDA-core
// kernel for this memory-bound case, called from the "attention" kernel's CUDA entry.
#pragma once
#include <cuda_runtime.h>

#include "tessera/kernels/attention.h"

namespace tessera {

// Runs `a` when it is temporal grouping with F <= 32 frames, self-attention (Lq = Lk =
// F * H * W), no bias, no key lengths, and RoPE (if any) already applied to the q / k passed
// (the pre-pass's copies); returns false with nothing launched otherwise.
bool attention_temporal(const AttentionArgs& a, const void* q, const void* k, cudaStream_t stream);

}  // namespace tessera
