#include "tessera/devices.h"

#include <dlfcn.h>

#include <map>
#include <mutex>
#include <stdexcept>

#include "cpu/runtime/cpu_backend.h"

namespace tessera {

namespace {
std::mutex mu;
std::string cuda_path;
bool cuda_probed = false;
CudaStatus cuda_state;
void* cuda_lib = nullptr;
CudaBackendFactory cuda_factory = nullptr;
// Never destroyed: tearing CUDA down during process exit races the driver's own teardown.
std::map<int, Backend*> cuda_backends;

void probe_cuda_locked() {
  if (cuda_probed) return;
  cuda_probed = true;
  if (cuda_path.empty()) {
    cuda_state.reason = "this build of @tessera/native has no CUDA backend (nvcc was not found when it was built)";
    return;
  }
  cuda_lib = dlopen(cuda_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!cuda_lib) {
    const char* e = dlerror();
    cuda_state.built = true;
    cuda_state.reason = std::string("the CUDA backend library could not be loaded: ") + (e ? e : "unknown error");
    return;
  }
  cuda_state.built = true;
  auto count_fn = reinterpret_cast<CudaDeviceCount>(dlsym(cuda_lib, "tessera_cuda_device_count"));
  cuda_factory = reinterpret_cast<CudaBackendFactory>(dlsym(cuda_lib, "tessera_cuda_backend_create"));
  if (!count_fn || !cuda_factory) {
    cuda_state.reason = "the CUDA backend library lacks its entry points; rebuild @tessera/native";
    return;
  }
  std::string err;
  int n = count_fn(&err);
  if (n <= 0) {
    cuda_state.reason = err.empty() ? "no CUDA device found" : err;
    return;
  }
  cuda_state.available = true;
  cuda_state.count = n;
}
}  // namespace

void set_cuda_library_path(const std::string& path) {
  std::lock_guard<std::mutex> lk(mu);
  if (!cuda_probed) cuda_path = path;
}

CudaStatus cuda_status() {
  std::lock_guard<std::mutex> lk(mu);
  probe_cuda_locked();
  return cuda_state;
}

Backend* get_backend(const std::string& device) {
  if (device == "cpu") {
    static CpuBackend cpu;
    return &cpu;
  }
  int index = -1;
  if (device == "cuda") {
    index = 0;
  } else if (device.rfind("cuda:", 0) == 0) {
    const std::string rest = device.substr(5);
    if (!rest.empty() && rest.find_first_not_of("0123456789") == std::string::npos && rest.size() < 6)
      index = std::stoi(rest);
  }
  if (index < 0)
    throw std::invalid_argument("unknown device '" + device + "'; use 'cpu', 'cuda' or 'cuda:N'");
  std::lock_guard<std::mutex> lk(mu);
  probe_cuda_locked();
  if (!cuda_state.available)
    throw std::invalid_argument("device '" + device + "' is not available: " + cuda_state.reason +
                                "; use device 'cpu'");
  if (index >= cuda_state.count)
    throw std::invalid_argument("device '" + device + "' does not exist: " + std::to_string(cuda_state.count) +
                                " CUDA device(s) found");
  auto it = cuda_backends.find(index);
  if (it != cuda_backends.end()) return it->second;
  std::string err;
  Backend* b = cuda_factory(index, &err);
  if (!b) throw DeviceError("could not start " + device + ": " + err);
  cuda_backends[index] = b;
  return b;
}

}  // namespace tessera
