// Typed errors: the addon tags each failure with a code, mapped here to a class
// callers can test with instanceof.

export class TesseraError extends Error {
  override name = "TesseraError";
}

/** A bad argument to an op: `op` and `arg` say which. */
export class OpError extends TesseraError {
  override name = "OpError";
  constructor(
    message: string,
    readonly op: string,
    readonly arg: string,
  ) {
    super(message);
  }
}

/** A device allocation failed; the process and its other tensors are unaffected. */
export class OutOfMemoryError extends TesseraError {
  override name = "OutOfMemoryError";
  constructor(
    message: string,
    readonly device: string,
    readonly requestedBytes: number,
  ) {
    super(message);
  }
}

/** The device failed or is unavailable. */
export class DeviceError extends TesseraError {
  override name = "DeviceError";
}

/** This build or process has no NCCL (multi-GPU): the message says how to get it. */
export class NcclUnavailableError extends TesseraError {
  override name = "NcclUnavailableError";
}

/** An NCCL call failed; `ncclCode` is NCCL's result code (or the wrapper's, from 1000). */
export class NcclError extends TesseraError {
  override name = "NcclError";
  constructor(
    message: string,
    readonly ncclCode: number,
  ) {
    super(message);
  }
}

interface NativeError extends Error {
  code?: string;
  op?: string;
  arg?: string;
  device?: string;
  requested?: number;
  ncclCode?: number;
}

export function translateError(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  const n = e as NativeError;
  switch (n.code) {
    case "TESSERA_OP_ERROR":
      return new OpError(n.message, n.op ?? "?", n.arg ?? "?");
    case "TESSERA_OOM":
      return new OutOfMemoryError(n.message, n.device ?? "?", n.requested ?? 0);
    case "TESSERA_DEVICE_ERROR":
      return new DeviceError(n.message);
    case "TESSERA_NO_NCCL":
      return new NcclUnavailableError(n.message);
    case "TESSERA_NCCL_ERROR":
      return new NcclError(n.message, n.ncclCode ?? -1);
    case "TESSERA_INVALID_ARGUMENT":
    case "TESSERA_ERROR":
      return new TesseraError(n.message);
    default:
      return e;
  }
}

/** Calls into the addon, rethrowing its errors as typed ones. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw translateError(e);
  }
}
