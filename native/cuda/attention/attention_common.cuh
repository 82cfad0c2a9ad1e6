// What the attention kernels share (attention.cu plans the call; attention_mma.cu,
// attention_f32.cu and attention_rope.cu run it): the parameter block, token grouping by
// index arithmetic, token coordinates. Grouping (NOTES.md): a "group" is a set of query
// tokens that share one key set - the whole sequence (full), one frame (spatial), or one
// (h, w) position across frames (temporal). Group g's m-th token is g * gstride + m * mstride.
// Small groups are packed several to a tile, with a same-group mask on the logits.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera {
namespace attn {

constexpr float kLog2e = 1.4426950408889634f;

struct AttnParams {
  const void* q;
  const void* k;
  const void* v;
  void* o;
  int lq, lk, heads, dim;
  float scale_log2;  // scale * log2(e)
  // grouping
  int groups;        // G
  int gsq, gsk;      // tokens per group (queries, keys)
  int gstride, mstride;
  int per_tile;      // P: groups packed in one tile (> 1 only when a group fits in half a tile)
  int tiles_per_group;
  int full;          // key token == key index (lets key_lengths shorten the loop)
  // RoPE
  int rope;
  int grid_h, grid_w;
  int rope_d0, rope_d1, rope_d2;
  int rope_off0, rope_off1, rope_off2;
  float rope_theta;
  // masking / bias
  const int32_t* key_lengths;
  const float* bias;
  int64_t bias_batch_stride;
  int vec;  // D % 8 == 0 and q/k/v/o 16-byte aligned: 16-byte global accesses
};

// Query row r of tile t -> token (or -1) and its local group within the tile.
__device__ __forceinline__ int query_token(const AttnParams& p, int tile, int r, int br, int* lg_out) {
  const int g0 = (tile / p.tiles_per_group) * p.per_tile;
  const int sub = tile % p.tiles_per_group;
  const int lg = p.per_tile > 1 ? r / p.gsq : 0;
  const int m = sub * br + r - lg * p.gsq;
  const int g = g0 + lg;
  *lg_out = lg;
  if (lg >= p.per_tile || g >= p.groups || m >= p.gsq) return -1;
  const int64_t tok = static_cast<int64_t>(g) * p.gstride + static_cast<int64_t>(m) * p.mstride;
  return tok < p.lq ? static_cast<int>(tok) : -1;
}

// Number of key indices a tile walks.
__device__ __forceinline__ int tile_keys(const AttnParams& p, int tile, int key_len) {
  const int g0 = (tile / p.tiles_per_group) * p.per_tile;
  const int ng = min(p.per_tile, p.groups - g0);
  int nk = ng * p.gsk;
  if (p.full) nk = min(nk, key_len);
  return max(nk, 0);
}

// Key index c of the tile whose first group is g0 -> token (or -1 when out of range or
// masked by key_lengths).
__device__ __forceinline__ int key_token(const AttnParams& p, int g0, int c, int key_len, int* lg_out) {
  const int lg = p.per_tile > 1 ? c / p.gsk : 0;
  const int m = c - lg * p.gsk;
  const int g = g0 + lg;
  *lg_out = lg;
  if (g >= p.groups || m >= p.gsk) return -1;
  const int64_t tok = static_cast<int64_t>(g) * p.gstride + static_cast<int64_t>(m) * p.mstride;
  return (tok < p.lk && tok < key_len) ? static_cast<int>(tok) : -1;
}

struct Coord {
  int f, h, w;
};

__device__ __forceinline__ Coord token_coord(const AttnParams& p, int tok) {
  const int hw = p.grid_h * p.grid_w;
  const int f = tok / hw;
  const int rem = tok - f * hw;
  const int hh = rem / p.grid_w;
  return Coord{f, hh, rem - hh * p.grid_w};
}

__device__ __forceinline__ void store_words(void* dst, const uint32_t (&w)[4]) {
  *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
}

inline bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

}  // namespace attn
}  // namespace tessera
