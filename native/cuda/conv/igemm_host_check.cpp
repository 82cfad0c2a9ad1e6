// Host replay of the igemm conv3d's index arithmetic (conv_igemm.cuh), for a machine with no
// GPU. Not part of the build (the CMake globs take *.cu / *.cc only). Run:
//   g++ -std=c++17 -O2 -I native/include -I native native/cuda/conv/igemm_host_check.cpp -o /tmp/igemm-check
//   /tmp/igemm-check
// For each problem and each block tile the kernel launches (128x128 / 2x4 warps, 128x96 / 4x2
// warps, 128x64 / 2x2 warps), it replays what every thread of every block copies into every pipeline stage
// (A chunks through Row / TapCursor / chunk_source, B chunks from the reordered weight, the
// reorder kernel's own tiling), multiplies the staged tiles in double, and checks:
//   - every staged A / B chunk slot is written exactly once per stage, reads stay inside x /
//     prev / Wt and are 16-byte aligned;
//   - the product, computed as the warps compute it (ldmatrix / ldmatrix.trans from the padded
//     shared layouts, mma.sync m16n8k16 fragment layouts, emulated), equals a direct convolution (written from conv.h's definition: time padded
//     with zeros, prev's frames replacing the last P frames of the front padding);
//   - the epilogue's fragment-to-output mapping writes every output element exactly once.
// What it does not replay: the cp.async pipeline's timing (which stage is read while which is
// written: the barrier logic is the matmul kernel's, native/cuda/gemm/matmul.cu), bf16 / f16
// rounding, and anything the hardware does differently from the PTX ISA's description.
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cuda/conv/conv_igemm.cuh"

using namespace tessera::igemm;

namespace {

struct Problem {
  std::string name;
  int B, F, H, W, Cin, Cout, kt, kh, kw;
  int st, sh, sw;
  int pad_front, pad_back, pad_h, pad_w;
  int P;
  int sample_tiles;  // 0: every tile; else that many tiles (first, last, random)
};

int fails = 0;
#define CHECK(cond, ...)                             \
  do {                                               \
    if (!(cond)) {                                   \
      if (++fails < 20) {                            \
        std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
        std::fprintf(stderr, __VA_ARGS__);           \
        std::fprintf(stderr, "\n");                  \
      }                                              \
    }                                                \
  } while (0)

struct Data {
  Problem pr;
  int Fo, Ho, Wo, K, Np, taps;
  int64_t M;
  std::vector<double> x, prev, w, wt;  // w: [N][Cin][taps]; wt: [K][Np] after the replayed reorder
};

Data make_data(const Problem& pr, std::mt19937& rng) {
  Data d;
  d.pr = pr;
  d.Fo = (pr.pad_front + pr.F + pr.pad_back - pr.kt) / pr.st + 1;
  d.Ho = (2 * pr.pad_h + pr.H - pr.kh) / pr.sh + 1;
  d.Wo = (2 * pr.pad_w + pr.W - pr.kw) / pr.sw + 1;
  d.taps = pr.kt * pr.kh * pr.kw;
  d.K = d.taps * pr.Cin;
  d.Np = (pr.Cout + 7) / 8 * 8;
  d.M = static_cast<int64_t>(pr.B) * d.Fo * d.Ho * d.Wo;
  std::uniform_int_distribution<int> u(-8, 8);  // small integers: the double sums are exact
  d.x.resize(static_cast<size_t>(pr.B) * pr.F * pr.H * pr.W * pr.Cin);
  for (auto& v : d.x) v = u(rng);
  d.prev.resize(static_cast<size_t>(pr.B) * pr.P * pr.H * pr.W * pr.Cin);
  for (auto& v : d.prev) v = u(rng);
  d.w.resize(static_cast<size_t>(pr.Cout) * d.K);
  for (auto& v : d.w) v = u(rng);
  // Replay reorder_kn_kernel: grid (ceil(J/32), ceil(Np/32)), block 32 x 8, a 32 x 33 tile.
  const int J = d.K;
  d.wt.assign(static_cast<size_t>(d.K) * d.Np, NAN);
  std::vector<int> written(d.wt.size(), 0);
  for (int bx = 0; bx < (J + 31) / 32; ++bx)
    for (int by = 0; by < (d.Np + 31) / 32; ++by) {
      double tile[32][33];
      const int j0 = bx * 32, n0 = by * 32;
      for (int ty = 0; ty < 8; ++ty)
        for (int tx = 0; tx < 32; ++tx)
          for (int r = ty; r < 32; r += 8) {
            const int n = n0 + r, j = j0 + tx;
            tile[r][tx] = (n < pr.Cout && j < J) ? d.w[static_cast<size_t>(n) * J + j] : 0.0;
          }
      for (int ty = 0; ty < 8; ++ty)
        for (int tx = 0; tx < 32; ++tx)
          for (int r = ty; r < 32; r += 8) {
            const int j = j0 + r, n = n0 + tx;
            if (j >= J || n >= d.Np) continue;
            const int64_t idx = wt_index(n, j, pr.Cin, d.taps, d.Np);
            CHECK(idx >= 0 && idx < static_cast<int64_t>(d.wt.size()), "%s: reorder index %lld out of range",
                  pr.name.c_str(), static_cast<long long>(idx));
            if (idx < 0 || idx >= static_cast<int64_t>(d.wt.size())) continue;
            d.wt[idx] = tile[tx][r];
            ++written[idx];
          }
    }
  for (size_t i = 0; i < written.size(); ++i)
    CHECK(written[i] == 1, "%s: Wt element %zu written %d times", pr.name.c_str(), i, written[i]);
  return d;
}

// Direct convolution at output voxel m, channel n, from conv.h's definition.
double reference(const Data& d, int64_t m, int n) {
  const Problem& pr = d.pr;
  int64_t q = m;
  const int wo = static_cast<int>(q % d.Wo);
  q /= d.Wo;
  const int ho = static_cast<int>(q % d.Ho);
  q /= d.Ho;
  const int fo = static_cast<int>(q % d.Fo);
  const int b = static_cast<int>(q / d.Fo);
  double s = 0;
  for (int it = 0; it < pr.kt; ++it) {
    // Padded time axis: [pad_front frames][x's F frames][pad_back frames]; the last P of the
    // front padding are prev's frames.
    const int tp = fo * pr.st + it;
    const double* src = nullptr;
    int64_t frame_base = 0;
    if (tp >= pr.pad_front && tp < pr.pad_front + pr.F) {
      src = d.x.data();
      frame_base = (static_cast<int64_t>(b) * pr.F + (tp - pr.pad_front)) * pr.H;
    } else if (tp < pr.pad_front && tp >= pr.pad_front - pr.P) {
      src = d.prev.data();
      frame_base = (static_cast<int64_t>(b) * pr.P + (tp - (pr.pad_front - pr.P))) * pr.H;
    }
    if (!src) continue;
    for (int ih = 0; ih < pr.kh; ++ih) {
      const int h = ho * pr.sh - pr.pad_h + ih;
      if (h < 0 || h >= pr.H) continue;
      for (int iw = 0; iw < pr.kw; ++iw) {
        const int w = wo * pr.sw - pr.pad_w + iw;
        if (w < 0 || w >= pr.W) continue;
        const double* px = src + ((frame_base + h) * pr.W + w) * pr.Cin;
        const int tap = (it * pr.kh + ih) * pr.kw + iw;
        for (int ci = 0; ci < pr.Cin; ++ci) s += px[ci] * d.w[(static_cast<size_t>(n) * pr.Cin + ci) * d.taps + tap];
      }
    }
  }
  return s;
}

Params make_params(const Data& d) {
  const Problem& pr = d.pr;
  Params p{};
  p.M = d.M;
  p.N = pr.Cout;
  p.Np = d.Np;
  p.K = d.K;
  p.F = pr.F;
  p.H = pr.H;
  p.W = pr.W;
  p.Cin = pr.Cin;
  p.P = pr.P;
  p.kt = pr.kt;
  p.kh = pr.kh;
  p.kw = pr.kw;
  p.taps = d.taps;
  p.st = pr.st;
  p.sh = pr.sh;
  p.sw = pr.sw;
  p.pad_front = pr.pad_front;
  p.pad_h = pr.pad_h;
  p.pad_w = pr.pad_w;
  p.Fo = d.Fo;
  p.Ho = d.Ho;
  p.Wo = d.Wo;
  p.dW = (pr.W - pr.kw) * pr.Cin;
  p.dH = (pr.H - pr.kh) * pr.W * pr.Cin;
  return p;
}

using Pair = std::array<double, 2>;

// ldmatrix.x4 (.trans): lane l gives the address of row l % 8 of 8x8 matrix l / 8 in `sm`;
// lane t receives, in register q, elements (t / 4, 2 (t % 4) .. + 1) of matrix q (of its transpose).
void ldmatrix_x4(const std::vector<double>& sm, const int (&addr)[32], bool trans, Pair (&out)[32][4],
                 const char* what) {
  for (int q = 0; q < 4; ++q) {
    double m[8][8];
    for (int j = 0; j < 8; ++j) {
      const int a = addr[8 * q + j];
      CHECK(a % 8 == 0 && a >= 0 && a + 8 <= static_cast<int>(sm.size()), "%s: ldmatrix row address %d", what, a);
      for (int e = 0; e < 8; ++e) {
        const double v = (a >= 0 && a + 8 <= static_cast<int>(sm.size())) ? sm[a + e] : NAN;
        CHECK(!std::isnan(v), "%s: ldmatrix reads padding at %d", what, a + e);
        m[j][e] = v;
      }
    }
    for (int t = 0; t < 32; ++t) {
      const int r = t / 4, c = 2 * (t % 4);
      out[t][q] = trans ? Pair{m[c][r], m[c + 1][r]} : Pair{m[r][c], m[r][c + 1]};
    }
  }
}

// mma.sync m16n8k16 (row.col) with the fragment layouts of native/cuda/gemm/mma.cuh.
void mma16816(const Pair (&a)[32][4], const Pair (&b0)[32], const Pair (&b1)[32], double (*acc)[4]) {
  double A[16][16], B[16][8];
  for (int t = 0; t < 32; ++t) {
    const int g = t / 4, c = 2 * (t % 4);
    for (int e = 0; e < 2; ++e) {
      A[g][c + e] = a[t][0][e];
      A[g + 8][c + e] = a[t][1][e];
      A[g][c + 8 + e] = a[t][2][e];
      A[g + 8][c + 8 + e] = a[t][3][e];
      B[c + e][g] = b0[t][e];
      B[c + 8 + e][g] = b1[t][e];
    }
  }
  for (int t = 0; t < 32; ++t) {
    const int g = t / 4, c = 2 * (t % 4);
    for (int q = 0; q < 4; ++q) {
      const int row = g + (q >> 1) * 8, col = c + (q & 1);
      double s = 0;
      for (int k = 0; k < 16; ++k) s += A[row][k] * B[k][col];
      acc[t][q] += s;
    }
  }
}

// Replays block `tile` of the BM x BN kernel; returns the number of output elements checked.
template <int BM, int BN, int WM, int WN>
int64_t replay_block(const Data& d, Params p, int64_t tile, std::vector<int>* out_written) {
  using S = Tile<BM, BN, WM, WN>;
  const Problem& pr = d.pr;
  p.tiles_n = (p.N + BN - 1) / BN;
  const int64_t m0 = (tile / p.tiles_n) * BM;
  const int n0 = static_cast<int>(tile % p.tiles_n) * BN;
  const int KT = (p.K + kBK - 1) / kBK;
  // Accumulators as the kernel holds them: per warp, lane, fragment (i, j), element q.
  std::vector<double> accv(static_cast<size_t>(S::NTH) * S::MT * S::NT * 4, 0.0);
  auto acc_at = [&](int warp, int lane, int i, int j, int q) -> double& {
    return accv[(((static_cast<size_t>(warp) * 32 + lane) * S::MT + i) * S::NT + j) * 4 + q];
  };
  // Per-thread state, as the kernel keeps it in registers.
  std::vector<std::vector<Row>> rows(S::NTH, std::vector<Row>(S::A_IT));
  std::vector<TapCursor> cur(S::NTH);
  for (int tid = 0; tid < S::NTH; ++tid) {
    const int a_kc = tid % S::A_CH, a_r0 = tid / S::A_CH;
    for (int i = 0; i < S::A_IT; ++i) rows[tid][i] = make_row(p, m0 + a_r0 + i * S::A_RSTEP);
    cur[tid] = TapCursor{0, 0, 0, 0, 0, 0};
    cur[tid].advance(p, a_kc * 8);
  }
  std::vector<double> As(static_cast<size_t>(BM) * kBK), Bs(static_cast<size_t>(kBK) * BN);
  std::vector<int> aw(As.size() / 8), bw(Bs.size() / 8);
  for (int kt = 0; kt < KT; ++kt) {  // load_stage(kt) runs in this order in the kernel
    const int k0 = kt * kBK;
    std::fill(aw.begin(), aw.end(), 0);
    std::fill(bw.begin(), bw.end(), 0);
    for (int tid = 0; tid < S::NTH; ++tid) {
      const int a_kc = tid % S::A_CH, a_r0 = tid / S::A_CH;
      for (int i = 0; i < S::A_IT; ++i) {
        const int r = a_r0 + i * S::A_RSTEP;
        bool from_prev = false;
        int64_t off = 0;
        const bool ok = chunk_source(p, rows[tid][i], cur[tid], &from_prev, &off);
        ++aw[(r * kBK + a_kc * 8) / 8];
        for (int e = 0; e < 8; ++e) As[static_cast<size_t>(r) * kBK + a_kc * 8 + e] = 0.0;
        if (!ok) continue;
        const std::vector<double>& src = from_prev ? d.prev : d.x;
        CHECK(off >= 0 && off + 8 <= static_cast<int64_t>(src.size()) && off % 8 == 0,
              "%s: A chunk offset %lld outside %s (%zu elements) or misaligned", pr.name.c_str(),
              static_cast<long long>(off), from_prev ? "prev" : "x", src.size());
        if (off < 0 || off + 8 > static_cast<int64_t>(src.size())) continue;
        for (int e = 0; e < 8; ++e) As[static_cast<size_t>(r) * kBK + a_kc * 8 + e] = src[off + e];
      }
      cur[tid].advance(p, kBK);
      for (int j = 0; j < S::B_IT; ++j) {
        const int c = tid + j * S::NTH;
        if (S::B_TOTAL % S::NTH != 0 && c >= S::B_TOTAL) break;
        const int r = c / S::B_CH, cc = c % S::B_CH;
        const int n = n0 + cc * 8;
        const bool ok = n < p.Np && k0 + r < p.K;
        ++bw[(r * BN + cc * 8) / 8];
        const int64_t off = static_cast<int64_t>(k0 + r) * p.Np + n;
        for (int e = 0; e < 8; ++e) {
          double v = 0.0;
          if (ok) {
            CHECK(off >= 0 && off + 8 <= static_cast<int64_t>(d.wt.size()) && off % 8 == 0,
                  "%s: B chunk offset %lld outside Wt", pr.name.c_str(), static_cast<long long>(off));
            if (off >= 0 && off + 8 <= static_cast<int64_t>(d.wt.size())) v = d.wt[off + e];
          }
          Bs[static_cast<size_t>(r) * BN + cc * 8 + e] = v;
        }
      }
    }
    for (size_t i = 0; i < aw.size(); ++i) CHECK(aw[i] == 1, "%s: A slot %zu written %d times", pr.name.c_str(), i, aw[i]);
    for (size_t i = 0; i < bw.size(); ++i) CHECK(bw[i] == 1, "%s: B slot %zu written %d times", pr.name.c_str(), i, bw[i]);
    // The compute step, fragment by fragment: the staged tiles in their padded shared layouts
    // (padding NaN: reading it fails), ldmatrix and mma.sync as each warp issues them.
    std::vector<double> As_p(S::A_ELEMS, NAN), Bs_p(S::B_ELEMS, NAN);
    for (int r = 0; r < BM; ++r)
      for (int kk = 0; kk < kBK; ++kk) As_p[r * S::LDA + kk] = As[static_cast<size_t>(r) * kBK + kk];
    for (int kk = 0; kk < kBK; ++kk)
      for (int c = 0; c < BN; ++c) Bs_p[kk * S::LDB + c] = Bs[static_cast<size_t>(kk) * BN + c];
    for (int warp = 0; warp < S::NTH / 32; ++warp) {
      const int wm = warp % WM, wn = warp / WM;
      for (int kk = 0; kk < kBK; kk += 16) {
        std::vector<std::array<std::array<Pair, 4>, 32>> af(S::MT);
        std::vector<std::array<Pair, 32>> b0(S::NT), b1(S::NT);
        for (int i = 0; i < S::MT; ++i) {
          int addr[32];
          for (int lane = 0; lane < 32; ++lane)
            addr[lane] = S::a_frag(wm, i, kk, lane);
          Pair r[32][4];
          ldmatrix_x4(As_p, addr, false, r, pr.name.c_str());
          for (int lane = 0; lane < 32; ++lane)
            for (int q = 0; q < 4; ++q) af[i][lane][q] = r[lane][q];
        }
        for (int j = 0; j < S::NT; j += 2) {
          int addr[32];
          for (int lane = 0; lane < 32; ++lane) addr[lane] = S::b_frag(wn, j, kk, lane);
          Pair r[32][4];
          ldmatrix_x4(Bs_p, addr, true, r, pr.name.c_str());
          for (int lane = 0; lane < 32; ++lane) {
            b0[j][lane] = r[lane][0];
            b1[j][lane] = r[lane][1];
            b0[j + 1][lane] = r[lane][2];
            b1[j + 1][lane] = r[lane][3];
          }
        }
        for (int i = 0; i < S::MT; ++i)
          for (int j = 0; j < S::NT; ++j) {
            Pair a[32][4], x0[32], x1[32];
            for (int lane = 0; lane < 32; ++lane) {
              for (int q = 0; q < 4; ++q) a[lane][q] = af[i][lane][q];
              x0[lane] = b0[j][lane];
              x1[lane] = b1[j][lane];
            }
            double tmp[32][4];
            for (int lane = 0; lane < 32; ++lane)
              for (int q = 0; q < 4; ++q) tmp[lane][q] = acc_at(warp, lane, i, j, q);
            mma16816(a, x0, x1, tmp);
            for (int lane = 0; lane < 32; ++lane)
              for (int q = 0; q < 4; ++q) acc_at(warp, lane, i, j, q) = tmp[lane][q];
          }
      }
    }
  }
  // Epilogue mapping: warp (wm, wn), lane (g, t4), fragment (i, j, h) -> (row, col, col + 1).
  int64_t checked = 0;
  for (int warp = 0; warp < S::NTH / 32; ++warp)
    for (int lane = 0; lane < 32; ++lane) {
      const int wm = warp % WM, wn = warp / WM;
      for (int j = 0; j < S::NT; ++j) {
        const int col = n0 + S::c_col(wn, j, lane);
        if (col >= p.N) continue;
        const bool two = col + 1 < p.N;
        for (int i = 0; i < S::MT; ++i)
          for (int h = 0; h < 2; ++h) {
            const int lrow = S::c_row(wm, i, h, lane);
            const int64_t row = m0 + lrow;
            if (row >= p.M) continue;
            for (int e = 0; e < (two ? 2 : 1); ++e) {
              const int c = col + e;
              const double got = acc_at(warp, lane, i, j, 2 * h + e);
              const double want = reference(d, row, c);
              CHECK(got == want, "%s (%dx%d): out[%lld, %d] = %g, direct conv %g", pr.name.c_str(), BM, BN,
                    static_cast<long long>(row), c, got, want);
              if (out_written) ++(*out_written)[static_cast<size_t>(row) * p.N + c];
              ++checked;
            }
          }
      }
    }
  return checked;
}

template <int BM, int BN, int WM, int WN>
void replay(const Data& d, std::mt19937& rng) {
  Params p = make_params(d);
  const int tiles_n = (p.N + BN - 1) / BN;
  const int64_t tiles = (p.M + BM - 1) / BM * tiles_n;
  std::vector<int64_t> which;
  const bool all = d.pr.sample_tiles == 0 || d.pr.sample_tiles >= tiles;
  if (all) {
    for (int64_t t = 0; t < tiles; ++t) which.push_back(t);
  } else {
    which = {0, tiles - 1};
    std::uniform_int_distribution<int64_t> u(0, tiles - 1);
    while (static_cast<int>(which.size()) < d.pr.sample_tiles) which.push_back(u(rng));
  }
  std::vector<int> written;
  if (all) written.assign(static_cast<size_t>(p.M) * p.N, 0);
  int64_t checked = 0;
  for (int64_t t : which) checked += replay_block<BM, BN, WM, WN>(d, p, t, all ? &written : nullptr);
  if (all)
    for (size_t i = 0; i < written.size(); ++i)
      CHECK(written[i] == 1, "%s (%dx%d): output %zu written %d times", d.pr.name.c_str(), BM, BN, i, written[i]);
  std::printf("  %-44s %3dx%-3d %6lld of %6lld tiles, %9lld outputs checked\n", d.pr.name.c_str(), BM, BN,
              static_cast<long long>(which.size()), static_cast<long long>(tiles), static_cast<long long>(checked));
}

}  // namespace

int main() {
  // name, B F H W Cin Cout kt kh kw, st sh sw, pad front back h w, P, sampled tiles
  const std::vector<Problem> problems = {
      // The conformance cases igemm takes (packages/native/src/ops/conv.cases.ts: Cin % 8 == 0).
      {"1x1x1-stride2 c8", 1, 3, 5, 6, 8, 5, 1, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0},
      {"causal-3x1x1-time-stride2-prev2 c24", 1, 4, 6, 6, 24, 24, 3, 1, 1, 2, 1, 1, 2, 0, 0, 0, 2, 0},
      {"causal-vae-c96 prev2", 1, 2, 16, 16, 96, 96, 3, 3, 3, 1, 1, 1, 2, 0, 1, 1, 2, 0},
      {"igemm/3x3x3-pad1-c16-to-36-odd", 2, 3, 7, 9, 16, 36, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0},
      {"igemm/3x3x3-stride2-c32-odd", 1, 5, 13, 11, 32, 24, 3, 3, 3, 2, 2, 2, 1, 1, 1, 1, 0, 0},
      {"igemm/causal-stride-1x2x2-c24-to-19-prev2", 1, 3, 9, 13, 24, 19, 3, 3, 3, 1, 2, 2, 2, 0, 1, 1, 2, 0},
      {"igemm/causal-c64-to-136-prev1", 1, 2, 11, 10, 64, 136, 3, 3, 3, 1, 1, 1, 2, 0, 1, 1, 1, 0},
      {"igemm/causal-c8-prev2", 1, 3, 6, 5, 8, 8, 3, 3, 3, 1, 1, 1, 2, 0, 1, 1, 2, 0},
      {"igemm/1x1x1-c8-to-16", 2, 3, 5, 7, 8, 16, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
      {"igemm/causal-c128-prev2", 1, 2, 12, 20, 128, 128, 3, 3, 3, 1, 1, 1, 2, 0, 1, 1, 2, 0},
      {"igemm/conv2d-3x3-stride2-c16-odd", 1, 1, 13, 15, 16, 24, 1, 3, 3, 1, 2, 2, 0, 0, 1, 1, 0, 0},
      {"igemm/causal-time-stride2-c16-prev1", 2, 5, 7, 6, 16, 40, 3, 3, 3, 2, 1, 1, 2, 0, 1, 1, 1, 0},
      {"igemm/pad-2x1x0x2-kernel-3x2x3-c8", 1, 3, 4, 5, 8, 12, 3, 2, 3, 1, 1, 1, 2, 1, 0, 2, 0, 0},
      {"patch-embed k=s=(1,2,2) c16->96", 1, 3, 8, 10, 16, 96, 1, 2, 2, 1, 2, 2, 0, 0, 0, 0, 0, 0},
      {"causal c40 (tiles straddle taps) prev2", 1, 2, 9, 7, 40, 72, 3, 3, 3, 1, 1, 1, 2, 0, 1, 1, 2, 0},
      // Wan-VAE decoder convs (benchmarks/kernels/cases.py; the two large ones at a quarter of
      // the height and width, to keep the host copy small), sampled tiles.
      {"wan 384->384 1x60x104 +2", 1, 1, 60, 104, 384, 384, 3, 3, 3, 1, 1, 1, 2, 0, 1, 1, 2, 6},
      {"wan 192->192 4x60x104 +2", 1, 4, 60, 104, 192, 192, 3, 3, 3, 1, 1, 1, 2, 0, 1, 1, 2, 6},
      {"wan 96->96 4x120x208 +2", 1, 4, 120, 208, 96, 96, 3, 3, 3, 1, 1, 1, 2, 0, 1, 1, 2, 6},
  };
  std::mt19937 rng(1234);
  for (const Problem& pr : problems) {
    const Data d = make_data(pr, rng);
    replay<128, 128, 2, 4>(d, rng);
    replay<128, 96, 4, 2>(d, rng);
    replay<128, 64, 2, 2>(d, rng);
  }
  std::printf(fails ? "igemm host check: %d FAILURES\n" : "igemm host check: all passed\n", fails);
  return fails ? 1 : 0;
}
