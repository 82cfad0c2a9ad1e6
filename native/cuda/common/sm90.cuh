// Hopper (sm_90a) building blocks for attention_sm90.cu: mbarriers, TMA tile loads
// (cp.async.bulk.tensor), wgmma shared-memory descriptors and fences, setmaxnreg and
// named barriers. Everything that needs sm_90a is compiled only when
// __CUDA_ARCH_FEAT_SM90_ALL is defined (the sm_90a pass); in the other passes the bodies
// are empty and the kernel that uses them is never launched (see attention_sm90.cu).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera {
namespace sm90 {

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define TESSERA_SM90A 1
#else
#define TESSERA_SM90A 0
#endif

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// ---- mbarrier ----------------------------------------------------------------------

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
#if TESSERA_SM90A
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#endif
}

// Makes the barrier initialisations visible to the other threads and to the async proxy
// (TMA); follow with a block-wide barrier.
__device__ __forceinline__ void mbar_init_fence() {
#if TESSERA_SM90A
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
#if TESSERA_SM90A
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#endif
}

// Arrives (count 1) and adds `bytes` to the transaction count the phase waits for.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
#if TESSERA_SM90A
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
#endif
}

__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
#if TESSERA_SM90A
  uint32_t ok;
  asm volatile(
      "{\n.reg .pred p;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(ok)
      : "r"(bar), "r"(parity)
      : "memory");
  return ok != 0;
#else
  return true;
#endif
}

// Waits until the phase with the given parity has completed. Watchdog: a barrier that
// never completes (a bug: a lost arrival or transaction) makes the thread store to
// address 0 after ~2^34 cycles (about 10 s), so the launch fails with an illegal-address
// error instead of hanging the device. (A store, not __trap(): with a trap in the kernel
// ptxas ignores the setmaxnreg register budget, spills and serialises the wgmma.)
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  if (mbar_try_wait(bar, parity)) return;
  const long long t0 = clock64();
  while (!mbar_try_wait(bar, parity)) {
    if (clock64() - t0 > (1ll << 34)) asm volatile("st.global.u32 [%0], %1;\n" ::"l"(0ull), "r"(1u) : "memory");
  }
}

// ---- TMA -------------------------------------------------------------------------

// 4-D tile load (coordinates innermost first) into shared memory; completes `bytes` of
// the transaction count of barrier `bar`.
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const void* tmap, uint32_t bar, int c0, int c1, int c2,
                                            int c3) {
#if TESSERA_SM90A
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5, %6}], "
      "[%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(tmap)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
      : "memory");
#endif
}

// 2-D tile load (coordinates innermost first), as tma_load_4d.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const void* tmap, uint32_t bar, int c0, int c1) {
#if TESSERA_SM90A
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(tmap)), "r"(bar), "r"(c0), "r"(c1)
      : "memory");
#endif
}

__device__ __forceinline__ void tma_prefetch_desc(const void* tmap) {
#if TESSERA_SM90A
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(tmap)) : "memory");
#endif
}

// ---- wgmma -----------------------------------------------------------------------

// Shared-memory matrix descriptor, 128-byte swizzle (layout type 1 on sm_90), start
// address and offsets in bytes (16-byte units in the descriptor).
//   K-major tile (rows x 64 elements of 2 bytes per 128-byte swizzle row, 8-row atoms of
//   1024 bytes): lbo = 16 (unused), sbo = 1024 (next 8 rows).
//   MN-major tile (the same bytes read transposed: 64 MN-elements per 128-byte row, one row
//   per K index): lbo = byte distance between 64-wide MN blocks, sbo = 1024 (next 8 K rows).
__device__ __forceinline__ uint64_t make_desc(uint32_t addr, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  uint64_t d = 0;
  d |= static_cast<uint64_t>((addr & 0x3FFFFu) >> 4);
  d |= static_cast<uint64_t>((lbo_bytes >> 4) & 0x3FFFu) << 16;
  d |= static_cast<uint64_t>((sbo_bytes >> 4) & 0x3FFFu) << 32;
  d |= static_cast<uint64_t>(1) << 62;  // SWIZZLE_128B
  return d;
}

__device__ __forceinline__ void wgmma_fence() {
#if TESSERA_SM90A
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if TESSERA_SM90A
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#if TESSERA_SM90A
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}

// Keeps the compiler from moving accesses of an accumulator across wgmma issue / wait.
__device__ __forceinline__ void fence_reg(float& x) { asm volatile("" : "+f"(x)::"memory"); }
__device__ __forceinline__ void fence_reg(uint32_t& x) { asm volatile("" : "+r"(x)::"memory"); }
template <int N>
__device__ __forceinline__ void fence_regs(float (&x)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) fence_reg(x[i]);
}
template <int N>
__device__ __forceinline__ void fence_regs(uint32_t (&x)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) fence_reg(x[i]);
}

// ---- registers, named barriers ---------------------------------------------------

template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
#if TESSERA_SM90A
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
#if TESSERA_SM90A
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

__device__ __forceinline__ void named_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace sm90
}  // namespace tessera
