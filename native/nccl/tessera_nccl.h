// A small C ABI over NCCL for Tessera's multi-GPU collectives (built only when
// CMake finds NCCL; see README.md). Every buffer is device memory; sizes are in
// bytes; `stream` is a cudaStream_t (nullptr: the legacy default stream). The
// collectives are enqueued on the stream and return without waiting for it.
// Return value: 0 on success, else a code for tessera_nccl_error().
#pragma once
#include <cstddef>

#define TESSERA_NCCL_ID_BYTES 128

extern "C" {

/** A fresh unique id (rank 0 makes it, and every rank must receive it). */
int tessera_nccl_get_unique_id(char out[TESSERA_NCCL_ID_BYTES]);

/**
 * Rendezvous through a shared file: rank 0 creates the id and publishes it at
 * `path` (written to path.tmp.<pid>, then renamed); the other ranks poll for the
 * file up to timeout_ms. Every rank then joins the communicator on CUDA `device`.
 */
int tessera_nccl_init_file(const char* path, int world_size, int rank, int device, int timeout_ms, void** comm);

/** Joins the communicator for an id every rank already holds. */
int tessera_nccl_init(const char id[TESSERA_NCCL_ID_BYTES], int world_size, int rank, int device, void** comm);

/** send holds world_size chunks of chunk_bytes, chunk j for rank j; recv gets chunk `rank` of every rank, in rank order. */
int tessera_nccl_all_to_all(void* comm, const void* send, void* recv, size_t chunk_bytes, void* stream);

/** recv (world_size · bytes) = every rank's send (bytes), in rank order. */
int tessera_nccl_all_gather(void* comm, const void* send, void* recv, size_t bytes, void* stream);

/**
 * Element-wise reduction of `count` elements over every rank into recv (recv may equal send).
 * dtype: 0 f32, 1 bf16, 2 f16, 3 i32, 4 u8 (tessera::DType's values); op: 0 sum, 1 prod, 2 max, 3 min, 4 avg.
 */
int tessera_nccl_all_reduce(void* comm, const void* send, void* recv, size_t count, int dtype, int op, void* stream);

/** recv (bytes) on every rank = root's send. */
int tessera_nccl_broadcast(void* comm, const void* send, void* recv, size_t bytes, int root, void* stream);

/** Sends send_bytes to rank `to` and receives recv_bytes from rank `from` (one ring step when to = rank+1, from = rank−1). */
int tessera_nccl_send_recv(void* comm, const void* send, size_t send_bytes, int to, void* recv, size_t recv_bytes,
                           int from, void* stream);

/** NCCL's version code (e.g. 22203 for 2.22.3) of the library loaded at run time. */
int tessera_nccl_version(int* version);

/** Frees the communicator. */
int tessera_nccl_destroy(void* comm);

/** Text for a code returned above (NCCL's own message for NCCL errors). */
const char* tessera_nccl_error(int code);
}
