// Errors thrown by ops and backends. The addon turns each into a JS error
// whose `code` lets TypeScript map it to a typed class.
#pragma once
#include <stdexcept>
#include <string>

namespace tessera {

// Bad argument to an op: names the op and the argument so the caller can fix it.
class OpError : public std::runtime_error {
 public:
  OpError(const std::string& op, const std::string& arg, const std::string& msg)
      : std::runtime_error("op '" + op + "': argument '" + arg + "' " + msg), op_(op), arg_(arg) {}
  const std::string& op() const { return op_; }
  const std::string& arg() const { return arg_; }

 private:
  std::string op_, arg_;
};

// A device allocation failed even after the cache was emptied.
class OutOfMemory : public std::runtime_error {
 public:
  OutOfMemory(const std::string& device, size_t requested, size_t in_use)
      : std::runtime_error("out of memory on " + device + ": could not allocate " +
                           std::to_string(requested) + " bytes (" + std::to_string(in_use) +
                           " bytes in use by live tensors); dispose tensors you no longer need, "
                           "or use smaller sizes"),
        device_(device), requested_(requested) {}
  const std::string& device() const { return device_; }
  size_t requested() const { return requested_; }

 private:
  std::string device_;
  size_t requested_;
};

// The device itself failed (driver error, kernel fault).
class DeviceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace tessera
