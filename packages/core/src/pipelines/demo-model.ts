// The bundled demo model (packages/core/models/tessera-world): a small Wan-family
// model trained by training/demo on the procedural world, shipped inside this
// package so that generation works on a fresh install with no download.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Folder of the bundled demo model (diffusers layout, float16 weights, under 25 MB). */
export const DEMO_MODEL_DIR: string = fileURLToPath(new URL("../../models/tessera-world", import.meta.url));

/** Whether the bundled demo model is present (it is in every published package and checkout). */
export function hasDemoModel(): boolean {
  return existsSync(`${DEMO_MODEL_DIR}/model_index.json`);
}
