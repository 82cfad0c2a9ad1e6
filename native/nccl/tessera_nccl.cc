// NCCL-backed collectives behind tessera_nccl.h. Compiled only when CMake finds
// nccl.h and libnccl (TESSERA_HAVE_NCCL); see README.md.
#include "tessera_nccl.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

static_assert(sizeof(ncclUniqueId) == TESSERA_NCCL_ID_BYTES, "ncclUniqueId size changed");

namespace {

// Codes: NCCL's ncclResult_t values as they are; ours from 1000.
constexpr int kErrArgs = 1000;
constexpr int kErrIdFile = 1001;
constexpr int kErrIdTimeout = 1002;
constexpr int kErrCuda = 1003;

int nccl(ncclResult_t r) { return r == ncclSuccess ? 0 : static_cast<int>(r); }

ncclComm_t as_comm(void* c) { return static_cast<ncclComm_t>(c); }

cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace

extern "C" {

int tessera_nccl_get_unique_id(char out[TESSERA_NCCL_ID_BYTES]) {
  if (!out) return kErrArgs;
  ncclUniqueId id;
  int rc = nccl(ncclGetUniqueId(&id));
  if (rc) return rc;
  std::memcpy(out, &id, sizeof id);
  return 0;
}

int tessera_nccl_init(const char id[TESSERA_NCCL_ID_BYTES], int world_size, int rank, int device, void** comm) {
  if (!id || !comm || world_size < 1 || rank < 0 || rank >= world_size) return kErrArgs;
  if (cudaSetDevice(device) != cudaSuccess) return kErrCuda;
  ncclUniqueId uid;
  std::memcpy(&uid, id, sizeof uid);
  ncclComm_t c = nullptr;
  int rc = nccl(ncclCommInitRank(&c, world_size, uid, rank));
  if (rc) return rc;
  *comm = c;
  return 0;
}

int tessera_nccl_init_file(const char* path, int world_size, int rank, int device, int timeout_ms, void** comm) {
  if (!path || !comm) return kErrArgs;
  char id[TESSERA_NCCL_ID_BYTES];
  if (rank == 0) {
    int rc = tessera_nccl_get_unique_id(id);
    if (rc) return rc;
    std::string tmp = std::string(path) + ".tmp." + std::to_string(static_cast<long>(getpid()));
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) return kErrIdFile;
    bool ok = std::fwrite(id, 1, sizeof id, f) == sizeof id;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok || std::rename(tmp.c_str(), path) != 0) return kErrIdFile;
  } else {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      FILE* f = std::fopen(path, "rb");
      if (f) {
        size_t n = std::fread(id, 1, sizeof id, f);
        std::fclose(f);
        if (n == sizeof id) break;
      }
      if (std::chrono::steady_clock::now() > deadline) return kErrIdTimeout;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return tessera_nccl_init(id, world_size, rank, device, comm);
}

int tessera_nccl_all_to_all(void* comm, const void* send, void* recv, size_t chunk_bytes, void* stream) {
  if (!comm) return kErrArgs;
  ncclComm_t c = as_comm(comm);
  int n = 0;
  int rc = nccl(ncclCommCount(c, &n));
  if (rc) return rc;
  const char* s = static_cast<const char*>(send);
  char* r = static_cast<char*>(recv);
  rc = nccl(ncclGroupStart());
  if (rc) return rc;
  // Every call inside the group is still ended by ncclGroupEnd, whose error wins.
  int first = 0;
  for (int peer = 0; peer < n; ++peer) {
    int a = nccl(ncclSend(s + peer * chunk_bytes, chunk_bytes, ncclChar, peer, c, as_stream(stream)));
    int b = nccl(ncclRecv(r + peer * chunk_bytes, chunk_bytes, ncclChar, peer, c, as_stream(stream)));
    if (!first) first = a ? a : b;
  }
  rc = nccl(ncclGroupEnd());
  return rc ? rc : first;
}

int tessera_nccl_all_gather(void* comm, const void* send, void* recv, size_t bytes, void* stream) {
  if (!comm) return kErrArgs;
  return nccl(ncclAllGather(send, recv, bytes, ncclChar, as_comm(comm), as_stream(stream)));
}

int tessera_nccl_send_recv(void* comm, const void* send, size_t send_bytes, int to, void* recv, size_t recv_bytes,
                           int from, void* stream) {
  if (!comm) return kErrArgs;
  ncclComm_t c = as_comm(comm);
  int rc = nccl(ncclGroupStart());
  if (rc) return rc;
  int a = nccl(ncclSend(send, send_bytes, ncclChar, to, c, as_stream(stream)));
  int b = nccl(ncclRecv(recv, recv_bytes, ncclChar, from, c, as_stream(stream)));
  rc = nccl(ncclGroupEnd());
  return rc ? rc : (a ? a : b);
}

int tessera_nccl_all_reduce(void* comm, const void* send, void* recv, size_t count, int dtype, int op, void* stream) {
  if (!comm) return kErrArgs;
  ncclDataType_t t;
  switch (dtype) {
    case 0: t = ncclFloat32; break;
    case 1: t = ncclBfloat16; break;
    case 2: t = ncclFloat16; break;
    case 3: t = ncclInt32; break;
    case 4: t = ncclUint8; break;
    default: return kErrArgs;
  }
  ncclRedOp_t o;
  switch (op) {
    case 0: o = ncclSum; break;
    case 1: o = ncclProd; break;
    case 2: o = ncclMax; break;
    case 3: o = ncclMin; break;
    case 4: o = ncclAvg; break;
    default: return kErrArgs;
  }
  return nccl(ncclAllReduce(send, recv, count, t, o, as_comm(comm), as_stream(stream)));
}

int tessera_nccl_broadcast(void* comm, const void* send, void* recv, size_t bytes, int root, void* stream) {
  if (!comm) return kErrArgs;
  return nccl(ncclBroadcast(send, recv, bytes, ncclChar, root, as_comm(comm), as_stream(stream)));
}

int tessera_nccl_version(int* version) {
  if (!version) return kErrArgs;
  return nccl(ncclGetVersion(version));
}

int tessera_nccl_destroy(void* comm) {
  if (!comm) return 0;
  return nccl(ncclCommDestroy(as_comm(comm)));
}

const char* tessera_nccl_error(int code) {
  switch (code) {
    case 0:
      return "success";
    case kErrArgs:
      return "tessera_nccl: invalid argument";
    case kErrIdFile:
      return "tessera_nccl: cannot write the unique-id file";
    case kErrIdTimeout:
      return "tessera_nccl: timed out waiting for rank 0's unique-id file";
    case kErrCuda:
      return "tessera_nccl: cudaSetDevice failed";
    default:
      return ncclGetErrorString(static_cast<ncclResult_t>(code));
  }
}
}
