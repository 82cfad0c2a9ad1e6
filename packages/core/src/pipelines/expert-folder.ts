// What a model folder says about a second expert (Wan2.2 A14B's diffusers layout):
// model_index.json lists transformer_2 beside transformer and gives boundary_ratio
// (0.875 for T2V-A14B, 0.9 for I2V-A14B). transformer_2 listed as [null, null], or
// boundary_ratio null, is a one-expert model, as diffusers reads it.
import { join } from "node:path";
import type { WanTransformerConfig } from "../models/wan/config.js";
import type { DiffusersFolder } from "../weights/diffusers.js";
import { readJsonFile } from "../weights/load.js";
import { ModelFolderError, wanConfigFromJson } from "./load.js";

export interface SecondExpert {
  transformer2: WanTransformerConfig;
  boundaryRatio: number;
}

/** The second expert's config and the boundary, or null for a one-expert folder. */
export async function readSecondExpert(folder: DiffusersFolder): Promise<SecondExpert | null> {
  const indexFile = join(folder.dir, "model_index.json");
  const index = (await readJsonFile(indexFile, "model_index.json")) as Record<string, unknown>;
  const ratio = index.boundary_ratio;
  const c = folder.components.get("transformer_2");
  if (!c) {
    if (ratio !== undefined && ratio !== null)
      throw new ModelFolderError(
        `${indexFile}: boundary_ratio is ${JSON.stringify(ratio)} but there is no transformer_2 (the second expert); remove boundary_ratio or add transformer_2`,
      );
    return null;
  }
  if (typeof ratio !== "number" || !(ratio > 0 && ratio < 1))
    throw new ModelFolderError(
      `${indexFile}: transformer_2 (the second expert) needs boundary_ratio, a number in (0, 1), got ${JSON.stringify(ratio ?? null)}`,
    );
  return { transformer2: wanConfigFromJson(c.config, c.configFile), boundaryRatio: ratio };
}
