// The op layer: one registry of named ops shared by every backend. An op checks
// its arguments (shape, dtype, device, contiguity), allocates its outputs on the
// inputs' backend, and submits that backend's kernel. The addon exposes every
// registered op through one entry point, so adding an op touches no binding code.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "tessera/backend.h"
#include "tessera/error.h"
#include "tessera/tensor.h"

namespace tessera {

using AttrValue = std::variant<bool, double, std::string, std::vector<double>, Tensor>;

class Attrs {
 public:
  Attrs() = default;
  explicit Attrs(std::string op) : op_(std::move(op)) {}
  void set(const std::string& key, AttrValue v) { map_[key] = std::move(v); }
  bool has(const std::string& key) const { return map_.count(key) != 0; }

  double get_float(const std::string& key, double def) const;
  double require_float(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t def) const;
  int64_t require_int(const std::string& key) const;
  bool get_bool(const std::string& key, bool def) const;
  std::string get_string(const std::string& key, const std::string& def) const;
  std::vector<int64_t> get_ints(const std::string& key, const std::vector<int64_t>& def) const;
  std::vector<int64_t> require_ints(const std::string& key) const;
  // Optional tensor attribute; returns an undefined Tensor when absent.
  Tensor get_tensor(const std::string& key) const;
  std::vector<std::string> keys() const;

 private:
  std::string op_;
  std::map<std::string, AttrValue> map_;
};

struct OpCall {
  std::string name;
  std::vector<Tensor> inputs;
  Attrs attrs;
};

using OpFn = std::vector<Tensor> (*)(const OpCall&);

struct OpInfo {
  std::string name;
  std::string summary;
  OpFn fn;
};

void register_op(const std::string& name, const std::string& summary, OpFn fn);
const OpInfo* find_op(const std::string& name);
std::vector<std::string> op_names();
// Runs the named op; throws OpError for an unknown op or a bad argument.
std::vector<Tensor> run_op(const OpCall& call);

#define TESSERA_REGISTER_OP(NAME, SUMMARY, FN)                                        \
  static const bool TESSERA_CAT(tessera_op_reg_, __LINE__) = [] {                    \
    ::tessera::register_op(NAME, SUMMARY, FN);                                        \
    return true;                                                                      \
  }()

// ---- helpers every op uses ----

// Fresh contiguous tensor on a backend.
Tensor empty(Backend* backend, const Shape& shape, DType dtype);

// Submits kernel `kernel` with `args` (copied) on t's backend, keeping `keep` alive.
template <class Args>
void launch(Backend* backend, const std::string& op, const std::string& kernel, const Args& args,
            const std::vector<Tensor>& keep);

// Argument checks: each throws OpError(op, arg, ...).
const Tensor& input(const OpCall& c, size_t i, const char* arg);
void check_defined(const std::string& op, const char* arg, const Tensor& t);
void check_dtype(const std::string& op, const char* arg, const Tensor& t, std::initializer_list<DType> allowed);
void check_same_dtype(const std::string& op, const char* arg, const Tensor& t, DType want);
void check_ndim(const std::string& op, const char* arg, const Tensor& t, int ndim);
void check_ndim_range(const std::string& op, const char* arg, const Tensor& t, int lo, int hi);
void check_contiguous(const std::string& op, const char* arg, const Tensor& t);
void check_shape(const std::string& op, const char* arg, const Tensor& t, const Shape& want);
void check_same_backend(const std::string& op, const char* arg, const Tensor& t, Backend* b);
void check_positive(const std::string& op, const char* arg, int64_t v);
// A float-compute op's input: contiguous, same backend, a float dtype the backend computes in.
void check_float_input(const std::string& op, const char* arg, const Tensor& t, Backend* b, DType dtype);
// Rejects attributes the op does not take: a misspelt one would otherwise be ignored silently.
void check_attr_names(const OpCall& c, std::initializer_list<const char*> known);
// A float dtype the tensor's backend computes in: the CPU reference is f32 only,
// CUDA computes bf16/f16 (and f32).
void check_compute_dtype(const std::string& op, const char* arg, const Tensor& t);

// ---- implementation of launch ----
template <class Args>
void launch(Backend* backend, const std::string& op, const std::string& kernel, const Args& args,
            const std::vector<Tensor>& keep) {
  KernelFn fn = backend->kernel(kernel);
  if (!fn) {
    throw OpError(op, "device", "'" + backend->name() + "' has no kernel '" + kernel +
                                    "' for this case; run it on another device or dtype");
  }
  std::vector<std::shared_ptr<Storage>> hold;
  hold.reserve(keep.size());
  for (const auto& t : keep)
    if (t.defined()) hold.push_back(t.storage);
  backend->submit([fn, args](const ExecCtx& ctx) { fn(&args, ctx); }, std::move(hold));
}

}  // namespace tessera
