// Index arithmetic of the mma.sync implicit-GEMM conv3d (conv3d_igemm.cu), kept apart from
// the kernel so that a host program can replay it (igemm_host_check.cpp, compiled with a
// plain C++ compiler: every function here is __host__ __device__ under nvcc, inline otherwise).
//
// GEMM view: out[m, n] = bias[n] + sum_k A[m, k] * Wt[k, n], with
//   m = ((b * Fo + fo) * Ho + ho) * Wo + wo   (output voxels in channels-last order)
//   n = output channel
//   k = ((it * kh + ih) * kw + iw) * Cin + ci (taps outer, input channel fastest)
// A[m, k] is element ci of input voxel (b, fo*st - pad_front + it, ho*sh - pad_h + ih,
// wo*sw - pad_w + iw): a frame f >= 0 lies in x, a frame in [-P, 0) is prev's frame f + P,
// anything else (or h / w outside the image) is zero. Wt is [K][Np], Np = Cout rounded up to 8.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define TESSERA_IG_HD __host__ __device__ __forceinline__
#else
#define TESSERA_IG_HD inline
#endif

namespace tessera {
namespace igemm {

constexpr int kBK = 32;       // k per pipeline stage (two m16n8k16 steps)
constexpr int kPad = 8;       // elements of padding per shared row: ldmatrix conflict-free
constexpr int kStages = 4;    // cp.async pipeline depth
constexpr int kMaxTaps = 32;  // kt * kh * kw: one bit per tap in a row's validity mask

struct Params {
  const void* x;
  const void* prev;  // [B, P, H, W, Cin]; x itself when P = 0 (then never read)
  const void* w;     // [K][Np]
  const void* bias;  // [N] or null
  void* out;         // [M][N]
  int64_t M;
  int N, Np, K;
  int F, H, W, Cin, P;
  int kt, kh, kw, taps;
  int st, sh, sw;
  int pad_front, pad_h, pad_w;
  int Fo, Ho, Wo;
  int dW, dH;    // k-offset corrections when iw wraps ((W - kw) * Cin) and ih wraps ((H - kh) * W * Cin)
  int tiles_n;   // N tiles (blockIdx.x = tile_m * tiles_n + tile_n)
  int pair_out;  // N even and out 4-byte aligned: two outputs per 32-bit store
  int vec_out;   // N % 8 == 0 and out 16-byte aligned: the staged epilogue, 16-byte stores
};

// Block tile BM x BN, WM x WN warps, and how the threads share the loads: each thread copies
// one fixed 16-byte chunk column of A (8 channels) for A_IT rows every stage; B's BK x BN / 8
// chunks (8 output channels each) are dealt out as chunk c = tid + j * NTH, row c / B_CH,
// column c % B_CH, j < B_IT (the last round partial when NTH does not divide them).
template <int BM, int BN, int WM, int WN>
struct Tile {
  static constexpr int NTH = WM * WN * 32;
  static constexpr int WTM = BM / WM, WTN = BN / WN;
  static constexpr int MT = WTM / 16, NT = WTN / 8;
  static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tile: multiples of 16");
  static constexpr int LDA = kBK + kPad, LDB = BN + kPad;
  static constexpr int A_ELEMS = BM * LDA, B_ELEMS = kBK * LDB;
  static constexpr int A_CH = kBK / 8;
  static_assert(NTH % A_CH == 0 && BM % (NTH / A_CH) == 0, "A loader");
  static constexpr int A_RSTEP = NTH / A_CH, A_IT = BM / A_RSTEP;
  static_assert(BN % 8 == 0, "B loader");
  static constexpr int B_CH = BN / 8, B_TOTAL = kBK * B_CH;
  static constexpr int B_IT = (B_TOTAL + NTH - 1) / NTH;
  static constexpr int SMEM = kStages * (A_ELEMS + B_ELEMS) * 2;  // bytes, 16-bit elements

  // Warp (wm, wn) = (warp % WM, warp / WM). Element offsets in a stage's A / B tile of the row
  // that `lane` hands to ldmatrix.x4 for A fragment i (rows of [BM][LDA]) and for the B
  // fragments j, j + 1 (ldmatrix.x4.trans over k rows of [BK][LDB]), k step kk.
  TESSERA_IG_HD static int a_frag(int wm, int i, int kk, int lane) {
    return (wm * WTM + i * 16 + (lane & 15)) * LDA + kk + (lane >> 4) * 8;
  }
  TESSERA_IG_HD static int b_frag(int wn, int j, int kk, int lane) {
    const int lq = lane >> 3, lr = lane & 7;
    return (kk + lr + (lq & 1) * 8) * LDB + wn * WTN + j * 8 + (lq >> 1) * 8;
  }
  // Tile-local row and column of accumulator (i, j) elements 2h and 2h + 1 (column + 1) of `lane`.
  TESSERA_IG_HD static int c_row(int wm, int i, int h, int lane) { return wm * WTM + i * 16 + (lane >> 2) + h * 8; }
  TESSERA_IG_HD static int c_col(int wn, int j, int lane) { return wn * WTN + j * 8 + 2 * (lane & 3); }
};

// One A row (output voxel m): element offsets of its tap-(0,0,0) voxel in x (xo) and prev
// (po), its first frame f0, and one validity bit per tap. m >= M: no valid tap.
struct Row {
  int64_t xo, po;
  int f0;
  uint32_t vmask;
};

TESSERA_IG_HD Row make_row(const Params& p, int64_t m) {
  Row r{0, 0, 0, 0u};
  if (m >= p.M) return r;
  const int64_t q = m / p.Wo;
  const int wo = static_cast<int>(m - q * p.Wo);
  const int64_t q2 = q / p.Ho;
  const int ho = static_cast<int>(q - q2 * p.Ho);
  const int64_t b = q2 / p.Fo;
  const int fo = static_cast<int>(q2 - b * p.Fo);
  const int f0 = fo * p.st - p.pad_front, h0 = ho * p.sh - p.pad_h, w0 = wo * p.sw - p.pad_w;
  r.f0 = f0;
  r.xo = (((b * p.F + f0) * p.H + h0) * p.W + w0) * p.Cin;
  r.po = (((b * p.P + f0 + p.P) * p.H + h0) * p.W + w0) * p.Cin;
  uint32_t wbits = 0;
  for (int iw = 0; iw < p.kw; ++iw)
    if (static_cast<unsigned>(w0 + iw) < static_cast<unsigned>(p.W)) wbits |= 1u << iw;
  uint32_t mk = 0;
  for (int it = 0; it < p.kt; ++it) {
    const int f = f0 + it;
    if (f < -p.P || f >= p.F) continue;
    for (int ih = 0; ih < p.kh; ++ih)
      if (static_cast<unsigned>(h0 + ih) < static_cast<unsigned>(p.H)) mk |= wbits << ((it * p.kh + ih) * p.kw);
  }
  r.vmask = mk;
  return r;
}

// The running k position of one A-loading thread: tap (it, ih, iw) with index `tap`, channel
// ci, and d = ((it * H + ih) * W + iw) * Cin + ci, the element offset of that tap / channel from
// the row's tap-(0,0,0) voxel (the same in x and in prev). Advanced without divisions.
struct TapCursor {
  int tap, it, ih, iw, ci, d;
  TESSERA_IG_HD void advance(const Params& p, int n) {
    ci += n;
    d += n;
    while (ci >= p.Cin) {
      ci -= p.Cin;
      ++tap;
      if (++iw == p.kw) {
        iw = 0;
        d += p.dW;
        if (++ih == p.kh) {
          ih = 0;
          d += p.dH;
          ++it;
        }
      }
    }
  }
};

// Source of the 16-byte chunk (row r, k at the cursor): true with *from_prev / *off set when
// it is read, false when it is zero (padding, a row past M, k past K).
TESSERA_IG_HD bool chunk_source(const Params& p, const Row& r, const TapCursor& c, bool* from_prev, int64_t* off) {
  if (c.tap >= p.taps || !((r.vmask >> (c.tap & (kMaxTaps - 1))) & 1u)) return false;
  *from_prev = r.f0 + c.it < 0;
  *off = (*from_prev ? r.po : r.xo) + c.d;
  return true;
}

// Where weight element (n, j = ci * taps + tap) of the PyTorch layout [N][Cin][taps] goes in
// Wt [K][Np]: k = tap * Cin + ci.
TESSERA_IG_HD int64_t wt_index(int n, int j, int cin, int taps, int Np) {
  const int ci = j / taps, tap = j - ci * taps;
  return (static_cast<int64_t>(tap) * cin + ci) * Np + n;
}

}  // namespace igemm
}  // namespace tessera
