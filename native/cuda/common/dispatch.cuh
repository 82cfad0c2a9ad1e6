// C++17 dtype dispatch with a type tag: dispatch_float_t(d, [&](auto tag) {
//   using T = typename decltype(tag)::type; ... }).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>

#include "tessera/dtype.h"
#include "tessera/error.h"

namespace tessera {

template <class T>
struct TypeTag {
  using type = T;
};

template <class F>
void dispatch_float_t(DType d, const char* kernel, F&& f) {
  switch (d) {
    case DType::F32: f(TypeTag<float>{}); break;
    case DType::BF16: f(TypeTag<__nv_bfloat16>{}); break;
    case DType::F16: f(TypeTag<__half>{}); break;
    default:
      throw DeviceError(std::string("CUDA kernel '") + kernel + "' got non-float dtype " + dtype_name(d));
  }
}

}  // namespace tessera
