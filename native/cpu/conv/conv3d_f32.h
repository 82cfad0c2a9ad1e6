// Channels-last 3-D convolution as an implicit GEMM on the shared f32 engine:
// rows are output positions, columns output channels, and the reduction runs over
// (kt, kh, kw, Cin) so that each kernel tap reads Cin contiguous input values.
// No im2col buffer: A panels are packed straight from x (and the frame cache).
#pragma once
#include "tessera/kernels/conv.h"

namespace tessera {

class ThreadPool;

// f32 only; the caller has checked the arguments.
void conv3d_f32(const Conv3dArgs& a, ThreadPool* pool);

}  // namespace tessera
