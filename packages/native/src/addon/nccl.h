// NCCL communicators for JavaScript (multi-GPU runs; native/nccl/README.md).
// The collectives live in libtessera_nccl.so, built only where CMake finds NCCL and
// opened here on first use, like the CUDA backend: a build or a machine without NCCL
// loads the addon as before and reports "this build has no NCCL" when one is asked for.
#pragma once
#include <napi.h>

#include <string>

#include "tessera/tensor.h"

namespace tessera {

// Defined in addon.cc: the live tensor behind a JS TensorHandle, or an OpError naming op/arg.
Tensor tensor_from_js(const Napi::Value& v, const std::string& op, const std::string& arg);

void set_nccl_library_path(const std::string& path);

// Adds setNcclLibrary, ncclStatus, ncclUniqueId, ncclInit and the NcclComm class to exports.
void init_nccl(Napi::Env env, Napi::Object exports);

}  // namespace tessera
