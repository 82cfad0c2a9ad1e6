#include "op.h"

#include <cmath>
#include <unordered_map>

namespace tessera {

namespace {
std::unordered_map<std::string, OpInfo>& registry() {
  static std::unordered_map<std::string, OpInfo> r;
  return r;
}

std::string kind_of(const AttrValue& v) {
  switch (v.index()) {
    case 0: return "a boolean";
    case 1: return "a number";
    case 2: return "a string";
    case 3: return "an array of numbers";
    case 4: return "a tensor";
  }
  return "?";
}
}  // namespace

void register_op(const std::string& name, const std::string& summary, OpFn fn) {
  registry()[name] = OpInfo{name, summary, fn};
}

const OpInfo* find_op(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> op_names() {
  std::vector<std::string> r;
  for (auto& kv : registry()) r.push_back(kv.first);
  return r;
}

std::vector<Tensor> run_op(const OpCall& call) {
  const OpInfo* info = find_op(call.name);
  if (!info) throw OpError(call.name, "name", "is not a known op");
  return info->fn(call);
}

double Attrs::get_float(const std::string& key, double def) const {
  auto it = map_.find(key);
  if (it == map_.end()) return def;
  if (auto* d = std::get_if<double>(&it->second)) return *d;
  if (auto* b = std::get_if<bool>(&it->second)) return *b ? 1.0 : 0.0;
  throw OpError(op_, key, "must be a number, got " + kind_of(it->second));
}

double Attrs::require_float(const std::string& key) const {
  if (!has(key)) throw OpError(op_, key, "is required");
  return get_float(key, 0);
}

int64_t Attrs::get_int(const std::string& key, int64_t def) const {
  auto it = map_.find(key);
  if (it == map_.end()) return def;
  const double* d = std::get_if<double>(&it->second);
  if (!d) throw OpError(op_, key, "must be an integer, got " + kind_of(it->second));
  if (!std::isfinite(*d) || std::floor(*d) != *d || std::fabs(*d) > 9.007199254740992e15)
    throw OpError(op_, key, "must be an integer, got " + std::to_string(*d));
  return static_cast<int64_t>(*d);
}

int64_t Attrs::require_int(const std::string& key) const {
  if (!has(key)) throw OpError(op_, key, "is required");
  return get_int(key, 0);
}

bool Attrs::get_bool(const std::string& key, bool def) const {
  auto it = map_.find(key);
  if (it == map_.end()) return def;
  if (auto* b = std::get_if<bool>(&it->second)) return *b;
  throw OpError(op_, key, "must be a boolean, got " + kind_of(it->second));
}

std::string Attrs::get_string(const std::string& key, const std::string& def) const {
  auto it = map_.find(key);
  if (it == map_.end()) return def;
  if (auto* s = std::get_if<std::string>(&it->second)) return *s;
  throw OpError(op_, key, "must be a string, got " + kind_of(it->second));
}

std::vector<int64_t> Attrs::get_ints(const std::string& key, const std::vector<int64_t>& def) const {
  auto it = map_.find(key);
  if (it == map_.end()) return def;
  const auto* v = std::get_if<std::vector<double>>(&it->second);
  if (!v) {
    if (std::holds_alternative<double>(it->second)) return {get_int(key, 0)};
    throw OpError(op_, key, "must be an array of integers, got " + kind_of(it->second));
  }
  std::vector<int64_t> r;
  for (double d : *v) {
    if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9.007199254740992e15)
      throw OpError(op_, key, "must hold integers only, got " + std::to_string(d));
    r.push_back(static_cast<int64_t>(d));
  }
  return r;
}

std::vector<int64_t> Attrs::require_ints(const std::string& key) const {
  if (!has(key)) throw OpError(op_, key, "is required");
  return get_ints(key, {});
}

Tensor Attrs::get_tensor(const std::string& key) const {
  auto it = map_.find(key);
  if (it == map_.end()) return Tensor{};
  if (auto* t = std::get_if<Tensor>(&it->second)) return *t;
  throw OpError(op_, key, "must be a tensor, got " + kind_of(it->second));
}

std::vector<std::string> Attrs::keys() const {
  std::vector<std::string> r;
  for (auto& kv : map_) r.push_back(kv.first);
  return r;
}

Tensor empty(Backend* backend, const Shape& shape, DType dtype) {
  Tensor t;
  t.dtype = dtype;
  t.shape = shape;
  t.strides = contiguous_strides(shape);
  size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  t.storage = backend->allocate(bytes);
  return t;
}

const Tensor& input(const OpCall& c, size_t i, const char* arg) {
  if (i >= c.inputs.size() || !c.inputs[i].defined())
    throw OpError(c.name, arg, "is required (input #" + std::to_string(i) + ")");
  return c.inputs[i];
}

void check_defined(const std::string& op, const char* arg, const Tensor& t) {
  if (!t.defined()) throw OpError(op, arg, "is required");
}

void check_dtype(const std::string& op, const char* arg, const Tensor& t, std::initializer_list<DType> allowed) {
  for (DType d : allowed)
    if (t.dtype == d) return;
  std::string names;
  for (DType d : allowed) names += (names.empty() ? "" : ", ") + std::string(dtype_name(d));
  throw OpError(op, arg, std::string("has dtype ") + dtype_name(t.dtype) + "; expected one of " + names);
}

void check_same_dtype(const std::string& op, const char* arg, const Tensor& t, DType want) {
  if (t.dtype != want)
    throw OpError(op, arg, std::string("has dtype ") + dtype_name(t.dtype) + " but must match " + dtype_name(want) +
                               "; cast it first");
}

void check_ndim(const std::string& op, const char* arg, const Tensor& t, int ndim) {
  if (t.ndim() != ndim)
    throw OpError(op, arg, "must have " + std::to_string(ndim) + " dims, got shape " + shape_str(t.shape));
}

void check_ndim_range(const std::string& op, const char* arg, const Tensor& t, int lo, int hi) {
  if (t.ndim() < lo || t.ndim() > hi)
    throw OpError(op, arg, "must have " + std::to_string(lo) + " to " + std::to_string(hi) + " dims, got shape " +
                               shape_str(t.shape));
}

void check_contiguous(const std::string& op, const char* arg, const Tensor& t) {
  if (!t.is_contiguous()) throw OpError(op, arg, "is not contiguous; call .contiguous() on it first");
}

void check_shape(const std::string& op, const char* arg, const Tensor& t, const Shape& want) {
  if (t.shape != want)
    throw OpError(op, arg, "has shape " + shape_str(t.shape) + "; expected " + shape_str(want));
}

void check_same_backend(const std::string& op, const char* arg, const Tensor& t, Backend* b) {
  if (t.backend() != b)
    throw OpError(op, arg, "is on " + t.backend()->name() + " but the op runs on " + b->name() +
                               "; move it with .to() first");
}

void check_positive(const std::string& op, const char* arg, int64_t v) {
  if (v <= 0) throw OpError(op, arg, "must be positive, got " + std::to_string(v));
}

void check_float_input(const std::string& op, const char* arg, const Tensor& t, Backend* b, DType dtype) {
  check_defined(op, arg, t);
  check_same_backend(op, arg, t, b);
  check_same_dtype(op, arg, t, dtype);
  check_contiguous(op, arg, t);
}

void check_attr_names(const OpCall& c, std::initializer_list<const char*> known) {
  for (const std::string& k : c.attrs.keys()) {
    bool ok = false;
    std::string list;
    for (const char* n : known) {
      ok = ok || k == n;
      list += (list.empty() ? "" : ", ") + std::string(n);
    }
    if (!ok)
      throw OpError(c.name, k, list.empty() ? "is not an attribute of this op (it takes none)"
                                            : "is not an attribute of this op; it takes " + list);
  }
}

void check_compute_dtype(const std::string& op, const char* arg, const Tensor& t) {
  check_dtype(op, arg, t, {DType::F32, DType::BF16, DType::F16});
  if (t.dtype != DType::F32 && t.backend()->name() == "cpu")
    throw OpError(op, arg, std::string("has dtype ") + dtype_name(t.dtype) +
                               " but the CPU backend computes in f32; cast it first (cast(" + arg + ", 'f32'))");
}

}  // namespace tessera
