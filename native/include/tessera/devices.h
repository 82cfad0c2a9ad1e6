// The device registry of the native runtime (native/runtime/devices.cc): it owns the backends,
// the CPU one always and CUDA ones opened on first use from the separately built CUDA library
// (absent, or present without a GPU, is fine). The addon binds it to JavaScript; ops that make
// tensors from nothing (factories) look their device up here by name.
#pragma once
#include <string>

#include "tessera/backend.h"

namespace tessera {

struct CudaStatus {
  bool built = false;      // the CUDA library exists next to the addon
  bool available = false;  // it loaded and found at least one device
  int count = 0;
  std::string reason;      // why not available
};

void set_cuda_library_path(const std::string& path);
CudaStatus cuda_status();
// "cpu", "cuda", "cuda:N"; throws a clear error for anything else or a missing GPU.
Backend* get_backend(const std::string& device);

}  // namespace tessera
