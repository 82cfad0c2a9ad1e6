// The Wan VAE decode split in space over a Communicator's ranks: rank r decodes a
// band of latent rows (and so of pixel rows) with the VAE's own decoder
// (WanVAE.decodeRows), whose split points (RowSplit in models/wan-vae/net.ts) this
// file fills with collectives:
// - halo: before every 3×3(×3) conv a band gets its neighbours' edge rows by ring
//   shifts of ±1 (zeros at the top and bottom of the frame, the conv's own padding);
// - the mid-block attention's keys and values: one all-gather of every band (it runs
//   at the latent resolution, where that is cheap);
// - at the end, the bands are all-gathered into the whole video on every rank.
// The result equals the one-device decode to rounding. Rows are split as evenly as
// they go (the first h mod N ranks get one more); every band needs at least one
// latent row.
import { concat, scope, slice, type Tensor, zeros } from "@tessera/native";
import type { RowSplit } from "../models/wan-vae/net.js";
import type { WanVAE } from "../models/wan-vae/vae.js";
import type { Communicator } from "./comm.js";

/** Latent rows [start, end) of rank `rank`'s band. */
export interface RowBand {
  start: number;
  end: number;
}

/** The band of `rows` latent rows rank `rank` of `worldSize` decodes: as even as they go, the extra rows first. */
export function rowBand(rows: number, worldSize: number, rank: number): RowBand {
  if (!Number.isInteger(rows) || rows < worldSize)
    throw new Error(
      `spatial-parallel VAE: ${rows} latent rows cannot be split over ${worldSize} ranks (each needs at least one; the latent height is the video's / 8, or / 16 for Wan2.2)`,
    );
  const base = Math.floor(rows / worldSize);
  const extra = rows % worldSize;
  const start = rank * base + Math.min(rank, extra);
  return { start, end: start + base + (rank < extra ? 1 : 0) };
}

export interface ParallelDecodeOptions {
  /** Called after each latent frame is decoded: i of n (0-based). */
  onChunk?: (i: number, n: number) => void;
  /** "all" (default): every rank returns the whole video; "band": each rank its own rows [B, T, 8·(end − start), W, 3]. */
  gather?: "all" | "band";
}

/**
 * Decodes normalised latents [B, F, h, w, z_dim] (the same on every rank) with the
 * frame's rows split over `comm`'s ranks. Returns the video [B, 1 + 4(F − 1), 8h, 8w, 3]
 * in [-1, 1] on every rank (or each rank's band, with gather "band").
 */
export async function decodeSpatialParallel(
  vae: WanVAE,
  latent: Tensor,
  comm: Communicator,
  opts: ParallelDecodeOptions = {},
): Promise<Tensor> {
  const z = vae.config.z_dim;
  const s = latent.shape;
  if (latent.ndim !== 5 || s[4] !== z || s.slice(0, 4).some((d) => d < 1))
    throw new Error(
      `decodeSpatialParallel: latent must be [B, F, h, w, ${z}] with every dim positive, got [${s.join(", ")}]`,
    );
  const band = rowBand(s[2] as number, comm.worldSize, comm.rank);
  const local = await scope(() =>
    vae.decodeRows(
      slice(latent, 2, band.start, band.end),
      rowExchange(comm),
      opts.onChunk ? { onChunk: opts.onChunk } : {},
    ),
  );
  if (opts.gather === "band") return local;
  try {
    return await comm.allGather(local, 2);
  } finally {
    local.dispose();
  }
}

/** The decoder's row-split points over `comm`: halo rows by ring shifts, keys and values by an all-gather. */
export function rowExchange(comm: Communicator): RowSplit {
  return {
    halo: (x) => halo(comm, x),
    gatherRows: (x) => comm.allGather(x, 1),
  };
}

/** x [B, F, hb, W, C] with its neighbours' edge rows above and below ([B, F, hb + 2, W, C]). */
async function halo(comm: Communicator, x: Tensor): Promise<Tensor> {
  const [b, f, hb, w, c] = x.shape as [number, number, number, number, number];
  const n = comm.worldSize;
  const r = comm.rank;
  const zero = () => zeros([b, f, 1, w, c], { device: x.device, dtype: x.dtype });
  if (n === 1) return scope(() => concat([zero(), x, zero()], 2));
  // Rank r gets rank r − 1's last row, then rank r + 1's first row; the frame's edges are zeros.
  const last = slice(x, 2, hb - 1, hb);
  const fromAbove = await comm.ringShift(last, 1);
  last.dispose();
  const first = slice(x, 2, 0, 1);
  const fromBelow = await comm.ringShift(first, -1);
  first.dispose();
  const top = r === 0 ? replace(fromAbove, zero()) : fromAbove;
  const bottom = r === n - 1 ? replace(fromBelow, zero()) : fromBelow;
  const out = concat([top, x, bottom], 2);
  top.dispose();
  bottom.dispose();
  return out;
}

function replace(prev: Tensor, next: Tensor): Tensor {
  if (prev !== next) prev.dispose();
  return next;
}
