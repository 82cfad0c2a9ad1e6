import { describe, expect, it } from "vitest";
import { type BucketOptions, relativePositionBucket, relativePositionBuckets } from "./bucket.js";

// HF's formula re-derived in plain float64 (no float32 rounding).
function bucketF64(rel: number, o: BucketOptions): number {
  let nb = o.numBuckets;
  let ret = 0;
  let n: number;
  if (o.bidirectional) {
    nb = Math.floor(nb / 2);
    ret += rel > 0 ? nb : 0;
    n = Math.abs(rel);
  } else {
    n = -Math.min(rel, 0);
  }
  const maxExact = Math.floor(nb / 2);
  if (n < maxExact) return ret + n;
  const large =
    maxExact + Math.floor((Math.log(n / maxExact) / Math.log(o.maxDistance / maxExact)) * (nb - maxExact));
  return ret + Math.min(large, nb - 1);
}

// The same in exact integers: the log bucket is the largest k ≤ nb − maxExact − 1 with
// (n/maxExact)^(nb−maxExact) ≥ (maxDistance/maxExact)^k.
function bucketExact(rel: number, o: BucketOptions): number {
  let nb = o.numBuckets;
  let ret = 0;
  let n: number;
  if (o.bidirectional) {
    nb = Math.floor(nb / 2);
    ret += rel > 0 ? nb : 0;
    n = Math.abs(rel);
  } else {
    n = -Math.min(rel, 0);
  }
  const me = Math.floor(nb / 2);
  if (n < me) return ret + n;
  const e = BigInt(nb - me);
  const [N, M, D] = [BigInt(n), BigInt(me), BigInt(o.maxDistance)];
  let k = 0;
  // (n/me)^e ≥ (D/me)^k  ⇔  n^e · me^k ≥ D^k · me^e
  while (k + 1 <= nb - me && N ** e * M ** BigInt(k + 1) >= D ** BigInt(k + 1) * M ** e) k++;
  return ret + Math.min(me + k, nb - 1);
}

const XXL: BucketOptions = { bidirectional: true, numBuckets: 32, maxDistance: 128 };

describe("relativePositionBucket", () => {
  it("matches float64 and exact-integer re-derivations of HF's formula", () => {
    const configs: BucketOptions[] = [];
    for (const bidirectional of [true, false])
      for (const [numBuckets, maxDistance] of [
        [32, 128],
        [32, 64],
        [16, 32],
        [64, 256],
        [8, 20],
        [40, 100],
      ] as const)
        configs.push({ bidirectional, numBuckets, maxDistance });
    let checked = 0;
    for (const o of configs) {
      for (let rel = -1200; rel <= 1200; rel++) {
        const got = relativePositionBucket(rel, o);
        expect(got, `rel ${rel} ${JSON.stringify(o)}`).toBe(bucketExact(rel, o));
        expect(got, `rel ${rel} ${JSON.stringify(o)}`).toBe(bucketF64(rel, o));
        expect(got).toBeGreaterThanOrEqual(0);
        expect(got).toBeLessThan(o.numBuckets);
        checked++;
      }
    }
    expect(checked).toBe(12 * 2401);
  });

  it("gives the known umT5-XXL encoder buckets at the boundaries", () => {
    // Keys before the query use buckets 0..15, keys after it 16..31; exact for |rel| < 8,
    // then one bucket per factor √2 of distance up to 128.
    const table: [number, number][] = [
      [0, 0],
      [-1, 1],
      [1, 17],
      [-7, 7],
      [7, 23],
      [-8, 8],
      [-11, 8],
      [-12, 9],
      [-15, 9],
      [-16, 10],
      [-22, 10],
      [-23, 11],
      [-31, 11],
      [-32, 12],
      [-45, 12],
      [-46, 13],
      [-63, 13],
      [-64, 14],
      [-90, 14],
      [-91, 15],
      [-511, 15],
      [16, 26],
      [64, 30],
      [91, 31],
      [100000, 31],
    ];
    for (const [rel, bucket] of table) expect(relativePositionBucket(rel, XXL), `rel ${rel}`).toBe(bucket);
  });

  it("builds the [Lq, Lk] table from key − query offsets", () => {
    const t = relativePositionBuckets(5, 7, XXL);
    expect(t.length).toBe(35);
    for (let i = 0; i < 5; i++)
      for (let j = 0; j < 7; j++) expect(t[i * 7 + j]).toBe(relativePositionBucket(j - i, XXL));
  });
});
