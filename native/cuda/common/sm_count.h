// Streaming multiprocessors of the current device, for persistent grids and tile choices.
#pragma once

namespace tessera {

// Cached per device; 108 (an A100's count) when the runtime cannot say.
int current_sm_count();

}  // namespace tessera
