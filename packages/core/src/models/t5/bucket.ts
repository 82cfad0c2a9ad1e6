// T5's relative-position buckets, computed on the host: the table is tiny ([Lq, Lk]
// integers) and the same for every layer, so it is built once per sequence length.

export interface BucketOptions {
  /** Encoder self-attention is bidirectional (half the buckets for keys after the query). */
  bidirectional: boolean;
  numBuckets: number;
  maxDistance: number;
}

const f32 = Math.fround;

/**
 * The bucket of relative position `rel` = key position − query position, as HF's
 * T5Attention/UMT5Attention._relative_position_bucket: exact buckets for small
 * distances, logarithmic ones up to maxDistance, the last bucket beyond.
 *
 * The logarithmic branch repeats torch's float32 arithmetic (log of a float32
 * quotient, divided by a float32-rounded log(maxDistance/maxExact), times an integer,
 * truncated), because at distances where the exact value is an integer (16, 32, 64
 * for 32 buckets / 128) rounding decides the bucket, and a PyTorch checkpoint was
 * trained with torch's answer.
 */
export function relativePositionBucket(rel: number, opts: BucketOptions): number {
  let numBuckets = opts.numBuckets;
  let bucket = 0;
  let n: number;
  if (opts.bidirectional) {
    numBuckets = Math.floor(numBuckets / 2);
    if (rel > 0) bucket += numBuckets;
    n = Math.abs(rel);
  } else {
    n = -Math.min(rel, 0);
  }
  const maxExact = Math.floor(numBuckets / 2);
  if (n < maxExact) return bucket + n;
  const logRatio = f32(f32(Math.log(f32(n / maxExact))) / f32(Math.log(opts.maxDistance / maxExact)));
  const large = maxExact + Math.trunc(f32(logRatio * (numBuckets - maxExact)));
  return bucket + Math.min(large, numBuckets - 1);
}

/** Buckets of every (query i, key j) pair, row-major [lq, lk], for rel = j − i. */
export function relativePositionBuckets(lq: number, lk: number, opts: BucketOptions): Int32Array {
  // Only lq + lk − 1 distinct offsets exist: bucket each once.
  const byOffset = new Int32Array(lq + lk - 1);
  for (let r = -(lq - 1); r <= lk - 1; r++) byOffset[r + lq - 1] = relativePositionBucket(r, opts);
  const out = new Int32Array(lq * lk);
  for (let i = 0; i < lq; i++)
    for (let j = 0; j < lk; j++) out[i * lk + j] = byOffset[j - i + lq - 1] as number;
  return out;
}
