// The peak memory of one piece of work. The allocator's peak is a high-water mark of the
// whole process with no reset, so a ballast tensor first fills the gap between what is in
// use and the peak so far: from then on every byte the work allocates raises the peak.
import type { Device } from "../device.js";
import { Tensor } from "../tensor.js";

export interface PeakMeasure<T> {
  result: T;
  /** Bytes in use on the device when the work started (the ballast not counted). */
  baseBytes: number;
  /** How far the work raised the bytes in use above baseBytes at its peak. */
  peakBytes: number;
}

/**
 * Runs `fn` and measures how far it raised `device`'s bytes in use at the peak. On the
 * CPU, turn on Device.setInline first, or queued ops hold their inputs and the peak is
 * that of how far JS ran ahead, not of the program's order.
 */
export async function measurePeak<T>(device: Device, fn: () => T | Promise<T>): Promise<PeakMeasure<T>> {
  await device.synchronize();
  const s = device.memoryStats();
  const gap = s.peak - s.inUse;
  const ballast = gap > 0 ? Tensor.empty([Math.ceil(gap / 4)], { dtype: "f32", device }) : null;
  await device.synchronize();
  const start = device.memoryStats().inUse;
  try {
    const result = await fn();
    await device.synchronize();
    return { result, baseBytes: s.inUse, peakBytes: device.memoryStats().peak - start };
  } finally {
    ballast?.dispose();
  }
}
