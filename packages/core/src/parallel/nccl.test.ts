import { NcclUnavailableError, ncclStatus } from "@tessera/native";
import { describe, expect, it } from "vitest";
import { NcclCommunicator } from "./nccl.js";
import { DistributedEnvError } from "./rendezvous.js";

describe("NcclCommunicator.fromEnv", () => {
  it("checks the environment first, naming the variable", async () => {
    await expect(NcclCommunicator.fromEnv({ env: { RANK: "0", WORLD_SIZE: "2" } })).rejects.toThrow(
      DistributedEnvError,
    );
  });

  it.runIf(!ncclStatus().available)("on a build without NCCL, says so and what to do", async () => {
    const env = { RANK: "0", WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", MASTER_PORT: "1" };
    await expect(NcclCommunicator.fromEnv({ env })).rejects.toThrow(NcclUnavailableError);
    await expect(NcclCommunicator.fromEnv({ env })).rejects.toThrow(/NCCL.*TESSERA_NCCL_ROOT/s);
  });
});
