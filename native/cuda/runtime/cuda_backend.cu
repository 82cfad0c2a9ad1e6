#include "cuda_backend.h"

#include <cstring>
#include <mutex>
#include <vector>

#ifdef TESSERA_HAVE_CUBLASLT
#include <cublasLt.h>
#endif

#include "cuda/runtime/kernel_choice.h"

namespace tessera {

KernelRegistry& cuda_kernels() {
  static KernelRegistry r;
  return r;
}

void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    // Clear a non-sticky error so the process can keep working.
    cudaGetLastError();
    throw DeviceError(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
  }
}

namespace {

// The copy back happens in wait(), on the waiting (worker) thread: a device-to-host
// cudaMemcpyAsync into pageable memory would block the calling JS thread until all
// queued kernels finish.
class CudaFence : public Fence {
 public:
  CudaFence(int device, cudaEvent_t ev, const void* src, void* dst, size_t bytes, std::shared_ptr<Storage> keep)
      : device_(device), ev_(ev), src_(src), dst_(dst), bytes_(bytes), keep_(std::move(keep)) {}
  ~CudaFence() override { cudaEventDestroy(ev_); }
  void wait() override {
    cudaSetDevice(device_);
    cudaError_t e = cudaEventSynchronize(ev_);
    if (e == cudaSuccess && bytes_) e = cudaMemcpy(dst_, src_, bytes_, cudaMemcpyDeviceToHost);
    keep_.reset();
    cuda_check(e, "reading a tensor back (an earlier kernel failed)");
  }

 private:
  int device_;
  cudaEvent_t ev_;
  const void* src_;
  void* dst_;
  size_t bytes_;
  std::shared_ptr<Storage> keep_;
};

void CUDART_CB free_host_copy(void* p) { std::free(p); }

class CudaGraph : public Graph {
 public:
  CudaGraph(CudaBackend* be, int device, cudaGraphExec_t exec, std::shared_ptr<GraphPool> pool)
      : be_(be), device_(device), exec_(exec), pool_(std::move(pool)) {}
  ~CudaGraph() override { be_->retire({exec_, std::move(pool_)}); }
  void replay() override {
    if (be_->capturing())
      throw DeviceError("cannot replay a CUDA graph on " + be_->name() + " while another graph is being captured");
    cudaSetDevice(device_);
    TESSERA_CUDA_CHECK(cudaGraphLaunch(exec_, be_->stream()));
  }

 private:
  CudaBackend* be_;
  int device_;
  cudaGraphExec_t exec_;
  std::shared_ptr<GraphPool> pool_;
};

}  // namespace

CudaBackend::CudaBackend(int index)
    : index_(index),
      name_("cuda:" + std::to_string(index)),
      alloc_(
          "cuda:" + std::to_string(index),
          [index](size_t bytes) -> void* {
            cudaSetDevice(index);
            void* p = nullptr;
            if (cudaMalloc(&p, bytes) != cudaSuccess) {
              cudaGetLastError();  // out-of-memory is not sticky: clear it and report
              return nullptr;
            }
            return p;
          },
          [index](void* p) {
            cudaSetDevice(index);
            cudaFree(p);
          }) {
  TESSERA_CUDA_CHECK(cudaSetDevice(index));
  TESSERA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  cudaDeviceProp prop;
  TESSERA_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  info_.name = name_;
  info_.description = prop.name;
  info_.total_memory = prop.totalGlobalMem;
  info_.sm = prop.major * 10 + prop.minor;
  ctx_.backend = this;
  ctx_.stream = stream_;
  ctx_.sm = info_.sm;
  ctx_.sms = prop.multiProcessorCount;
  // Read once per process: every device runs the same kernel choice.
  static const CudaKernelChoice choice = read_kernel_choice();
  ctx_.cuda_choice = &choice;
#ifdef TESSERA_HAVE_CUBLASLT
  cublasLtHandle_t h = nullptr;
  if (cublasLtCreate(&h) == CUBLAS_STATUS_SUCCESS) {
    ctx_.blas = h;
    ctx_.workspace_bytes = 32u << 20;
    TESSERA_CUDA_CHECK(cudaMalloc(&ctx_.workspace, ctx_.workspace_bytes));
    info_.has_blas = true;
  }
#endif
}

CudaBackend::~CudaBackend() = default;  // never destroyed: see native/runtime/devices.cc

void CudaBackend::refuse_during_capture(const char* what) const {
  if (capturing_.load())
    throw DeviceError(std::string("cannot ") + what + " on " + name_ +
                      " while a CUDA graph is being captured: create inputs before the capture and read "
                      "results after it");
}

void CudaBackend::capture_over() {
  {
    std::lock_guard<std::mutex> lk(capture_mu_);
    capturing_.store(false);
  }
  capture_done_.notify_all();
}

void CudaBackend::begin_capture() {
  if (capturing_.load()) throw DeviceError("a CUDA graph is already being captured on " + name_);
  cudaSetDevice(index_);
  // Taken before the capture opens: a synchronize() already waiting on the stream
  // (from a worker thread) finishes first, and a later one waits for the capture.
  std::lock_guard<std::mutex> lk(capture_mu_);
  alloc_.begin_capture();
  // Relaxed: the allocator may cudaMalloc and other threads may wait on earlier
  // events while the capture is open.
  cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed);
  if (e != cudaSuccess) {
    alloc_.release_pool(alloc_.end_capture());
    cuda_check(e, "cudaStreamBeginCapture");
  }
  capture_thread_ = std::this_thread::get_id();
  capturing_.store(true);
}

std::shared_ptr<Graph> CudaBackend::end_capture() {
  if (!capturing_.load()) throw DeviceError("no graph capture is in progress on " + name_);
  cudaSetDevice(index_);
  cudaGraph_t graph = nullptr;
  cudaError_t e = cudaStreamEndCapture(stream_, &graph);
  capture_over();
  std::shared_ptr<GraphPool> pool = alloc_.end_capture();
  cudaGraphExec_t exec = nullptr;
  if (e == cudaSuccess) e = cudaGraphInstantiate(&exec, graph, 0);
  if (graph) cudaGraphDestroy(graph);
  std::vector<Retired> later;
  {
    std::lock_guard<std::mutex> lk(retired_mu_);
    later.swap(retired_);
  }
  free_retired(std::move(later));
  if (e != cudaSuccess) {
    alloc_.release_pool(pool);
    cudaGetLastError();
    throw DeviceError(std::string("CUDA graph capture on ") + name_ + " failed: " + cudaGetErrorString(e) +
                      " (an op in the captured work cannot be captured; run it without a graph)");
  }
  return std::make_shared<CudaGraph>(this, index_, exec, std::move(pool));
}

void CudaBackend::abort_capture() {
  if (!capturing_.load()) return;
  cudaSetDevice(index_);
  cudaGraph_t graph = nullptr;
  cudaStreamEndCapture(stream_, &graph);
  if (graph) cudaGraphDestroy(graph);
  cudaGetLastError();
  capture_over();
  // Nothing recorded ran, so the pool's blocks can go straight back.
  alloc_.release_pool(alloc_.end_capture());
}

void CudaBackend::retire(Retired r) {
  if (capturing_.load()) {
    std::lock_guard<std::mutex> lk(retired_mu_);
    retired_.push_back(std::move(r));
    return;
  }
  std::vector<Retired> one;
  one.push_back(std::move(r));
  free_retired(std::move(one));
}

void CudaBackend::free_retired(std::vector<Retired> list) {
  if (list.empty()) return;
  cudaSetDevice(index_);
  // The last replay must finish before its memory is handed to anything else.
  cudaStreamSynchronize(stream_);
  for (Retired& r : list) {
    cudaGraphExecDestroy(r.exec);
    alloc_.release_pool(r.pool);
  }
}

std::shared_ptr<Storage> CudaBackend::allocate(size_t bytes) {
  void* p = alloc_.allocate(bytes);
  if (poison_allocations()) {
    cudaSetDevice(index_);
    TESSERA_CUDA_CHECK(cudaMemsetAsync(p, 0xff, bytes, stream_));
  }
  return std::make_shared<Storage>(this, p, bytes);
}

// Blocks are reused in stream order: the only stream that touches them is ours, so a
// block freed here can be handed to the next op at once.
void CudaBackend::release(void* ptr, size_t) { alloc_.free(ptr); }

void CudaBackend::submit(std::function<void(const ExecCtx&)> fn, std::vector<std::shared_ptr<Storage>>) {
  cudaSetDevice(index_);
  fn(ctx_);
}

void CudaBackend::upload(void* dst, const void* src, size_t bytes) {
  refuse_during_capture("copy host data to the device");
  cudaSetDevice(index_);
  // Stage through a host copy so the caller's memory is free on return while the
  // copy stays in stream order.
  void* staging = std::malloc(bytes);
  if (!staging) throw OutOfMemory("host (staging for " + name_ + ")", bytes, 0);
  std::memcpy(staging, src, bytes);
  cudaError_t e = cudaMemcpyAsync(dst, staging, bytes, cudaMemcpyHostToDevice, stream_);
  if (e != cudaSuccess) {
    std::free(staging);
    cuda_check(e, "cudaMemcpyAsync (upload)");
  }
  TESSERA_CUDA_CHECK(cudaLaunchHostFunc(stream_, free_host_copy, staging));
}

std::shared_ptr<Fence> CudaBackend::download(const void* src, void* host_dst, size_t bytes,
                                             std::shared_ptr<Storage> keep) {
  refuse_during_capture("read a tensor back");
  cudaSetDevice(index_);
  cudaEvent_t ev;
  TESSERA_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming | cudaEventBlockingSync));
  TESSERA_CUDA_CHECK(cudaEventRecord(ev, stream_));
  return std::make_shared<CudaFence>(index_, ev, src, host_dst, bytes, std::move(keep));
}

// Page-locked host memory: the copy engines read and write it directly, so a copy
// to or from it runs asynchronously at full bus speed (pageable memory is staged
// through a driver buffer, at a fraction of it, and blocks the calling thread).
std::shared_ptr<Storage> CudaBackend::allocate_pinned(Backend* host, size_t bytes) {
  refuse_during_capture("allocate page-locked host memory");
  cudaSetDevice(index_);
  void* p = nullptr;
  if (cudaMallocHost(&p, bytes ? bytes : 1) != cudaSuccess) {
    cudaGetLastError();
    throw OutOfMemory("page-locked host memory (for " + name_ + ")", bytes, 0);
  }
  auto s = std::make_shared<Storage>(host, p, bytes);
  s->free_fn = [](void* q) { cudaFreeHost(q); };
  return s;
}

// Stream-ordered, so a device block released right after is not reused before the
// copy has read it (the allocator hands blocks out in stream order); the host side
// must outlive the copy, which the caller ensures (see copyAsync in the addon).
void CudaBackend::copy_host(void* dst, const void* src, size_t bytes, bool to_device,
                            std::vector<std::shared_ptr<Storage>>) {
  refuse_during_capture(to_device ? "copy host memory to the device" : "copy device memory to the host");
  if (!bytes) return;
  cudaSetDevice(index_);
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost,
                                     stream_));
}

// A second stream for host <-> device copies, so that a copy (the next transformer
// block's weights under offload) runs on the copy engines while kernels run on the
// compute stream. Two events order them: the copy waits for the compute submitted
// before it (which may still read what it overwrites), and compute waits for the
// copies at wait_side_copies(). cudaStreamWaitEvent waits for the event's most
// recent record at the time of the call, so the events are reused.
void CudaBackend::copy_host_side(void* dst, const void* src, size_t bytes, bool to_device,
                                 std::vector<std::shared_ptr<Storage>>) {
  refuse_during_capture(to_device ? "copy host memory to the device" : "copy device memory to the host");
  if (!bytes) return;
  cudaSetDevice(index_);
  std::lock_guard<std::mutex> lk(copy_mu_);
  if (!copy_stream_) {
    TESSERA_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    TESSERA_CUDA_CHECK(cudaEventCreateWithFlags(&compute_mark_, cudaEventDisableTiming));
    TESSERA_CUDA_CHECK(cudaEventCreateWithFlags(&copies_mark_, cudaEventDisableTiming));
  }
  TESSERA_CUDA_CHECK(cudaEventRecord(compute_mark_, stream_));
  TESSERA_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, compute_mark_, 0));
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost,
                                     copy_stream_));
  TESSERA_CUDA_CHECK(cudaEventRecord(copies_mark_, copy_stream_));
}

void CudaBackend::wait_side_copies() {
  refuse_during_capture("wait for the copy stream");
  std::lock_guard<std::mutex> lk(copy_mu_);
  if (!copy_stream_) return;
  cudaSetDevice(index_);
  TESSERA_CUDA_CHECK(cudaStreamWaitEvent(stream_, copies_mark_, 0));
}

void CudaBackend::synchronize() {
  // The capturing thread would wait on itself; any other thread (a JS
  // synchronize() runs on a worker) waits until the capture is over, and holds
  // the lock while it waits on the stream so that no capture opens meanwhile.
  std::unique_lock<std::mutex> lk(capture_mu_);
  if (capturing_.load() && capture_thread_ == std::this_thread::get_id())
    throw DeviceError("cannot wait for the device on " + name_ +
                      " while a CUDA graph is being captured: read results after the capture");
  capture_done_.wait(lk, [this] { return !capturing_.load(); });
  cudaSetDevice(index_);
  TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream_));
  // Copies on the copy stream are done too, waited for or not.
  std::lock_guard<std::mutex> copies(copy_mu_);
  if (copy_stream_) TESSERA_CUDA_CHECK(cudaStreamSynchronize(copy_stream_));
}

}  // namespace tessera

extern "C" int tessera_cuda_device_count(std::string* error) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (error) *error = std::string("no usable CUDA device: ") + cudaGetErrorString(e);
    cudaGetLastError();
    return 0;
  }
  return n;
}

extern "C" tessera::Backend* tessera_cuda_backend_create(int index, std::string* error) {
  try {
    return new tessera::CudaBackend(index);
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return nullptr;
  }
}
