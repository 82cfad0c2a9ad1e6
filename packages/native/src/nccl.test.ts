import { describe, expect, it } from "vitest";
import { NcclError, NcclUnavailableError, TesseraError, translateError } from "./errors.js";
import { NCCL_ID_BYTES, NcclComm, ncclStatus, ncclUniqueId, requireNccl } from "./nccl.js";

const status = ncclStatus();

describe("NCCL binding", () => {
  it("reports its status", () => {
    expect(typeof status.built).toBe("boolean");
    expect(typeof status.available).toBe("boolean");
    expect(Number.isInteger(status.version)).toBe(true);
    if (status.available) expect(status.reason).toBe("");
    else expect(status.reason.length).toBeGreaterThan(20);
  });

  it.runIf(!status.available)(
    "without NCCL, every call fails with a typed error saying what to do",
    async () => {
      expect(status.reason).toMatch(/NCCL/);
      expect(status.reason).toMatch(/TESSERA_NCCL_ROOT/);
      if (!status.built) expect(status.reason).toMatch(/^this build has no NCCL: /);
      expect(() => requireNccl()).toThrow(NcclUnavailableError);
      expect(() => ncclUniqueId()).toThrow(NcclUnavailableError);
      let err: unknown;
      try {
        ncclUniqueId();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TesseraError);
      expect((err as Error).message).toBe(status.reason);
      await expect(NcclComm.init(new Uint8Array(NCCL_ID_BYTES), 2, 0, "cuda:0")).rejects.toThrow(
        NcclUnavailableError,
      );
    },
  );

  it.runIf(status.available)("makes 128-byte unique ids, different each time", () => {
    const a = ncclUniqueId();
    const b = ncclUniqueId();
    expect(a.length).toBe(NCCL_ID_BYTES);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it.runIf(status.available)("checks init's arguments before calling NCCL", async () => {
    await expect(NcclComm.init(new Uint8Array(3), 2, 0, "cuda:0")).rejects.toThrow(/128-byte unique id/);
    await expect(NcclComm.init(new Uint8Array(NCCL_ID_BYTES), 2, 2, "cuda:0")).rejects.toThrow(/rank/);
    await expect(NcclComm.init(new Uint8Array(NCCL_ID_BYTES), 1, 0, "cpu")).rejects.toThrow(/CUDA device/);
  });

  it("maps the addon's NCCL error codes to classes", () => {
    const e = Object.assign(new Error("nccl allToAll failed: unhandled cuda error (code 1)"), {
      code: "TESSERA_NCCL_ERROR",
      ncclCode: 1,
    });
    const t = translateError(e);
    expect(t).toBeInstanceOf(NcclError);
    expect((t as NcclError).ncclCode).toBe(1);
    const u = translateError(
      Object.assign(new Error("this build has no NCCL: …"), { code: "TESSERA_NO_NCCL" }),
    );
    expect(u).toBeInstanceOf(NcclUnavailableError);
  });
});
