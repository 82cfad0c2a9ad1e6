// The diffusers model-folder layout (e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers):
//   model_index.json            {"_class_name": "WanPipeline", "vae": ["diffusers", "AutoencoderKLWan"], ...}
//   <component>/config.json     models (transformer, vae, text_encoder)
//   <component>/scheduler_config.json, tokenizer_config.json, preprocessor_config.json
//                               for schedulers, tokenizers and image processors
//   <component>/*.safetensors   weights, possibly sharded with a *.safetensors.index.json
// A component given as [null, null] is absent (optional parts of a pipeline).
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { type LoadWeightsOptions, loadWeights, readJsonFile } from "./load.js";
import { WeightError, type WeightStore } from "./store.js";
import { isJsonObject, type JsonObject } from "./strict-json.js";

export interface DiffusersComponent {
  readonly name: string;
  /** "diffusers" or "transformers" (the library whose class it is). */
  readonly library: string;
  readonly className: string;
  /** The component's folder. */
  readonly path: string;
  /** Its config file, and the parsed object. */
  readonly configFile: string;
  readonly config: Readonly<JsonObject>;
}

export interface DiffusersFolder {
  readonly dir: string;
  /** The pipeline class from model_index.json's "_class_name". */
  readonly pipelineClass: string;
  readonly diffusersVersion?: string;
  /** Present components by name. */
  readonly components: ReadonlyMap<string, DiffusersComponent>;
  /** Components model_index.json lists as [null, null]. */
  readonly absent: readonly string[];
}

/** The config file a component's class keeps (diffusers/transformers conventions). */
function configFileFor(className: string): string {
  if (/Scheduler$/.test(className)) return "scheduler_config.json";
  if (/Tokenizer(Fast)?$/.test(className)) return "tokenizer_config.json";
  if (/(ImageProcessor|FeatureExtractor|Processor)(Fast)?$/.test(className))
    return "preprocessor_config.json";
  return "config.json";
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** Reads and validates a diffusers model folder; errors name the missing or malformed file. */
export async function openDiffusersFolder(dir: string): Promise<DiffusersFolder> {
  if (!(await isDir(dir))) throw new WeightError(`${dir}: no such folder`);
  const indexFile = join(dir, "model_index.json");
  const index = await readJsonFile(indexFile, "model_index.json");
  if (!isJsonObject(index)) throw new WeightError(`${indexFile}: must be a JSON object`);
  const cls = index._class_name;
  if (typeof cls !== "string" || cls === "")
    throw new WeightError(`${indexFile}: "_class_name" must name the pipeline class`);
  const version = index._diffusers_version;

  const components = new Map<string, DiffusersComponent>();
  const absent: string[] = [];
  for (const [name, v] of Object.entries(index)) {
    if (name.startsWith("_")) continue;
    // Non-component settings (e.g. booleans like "requires_safety_checker") are not lists.
    if (!Array.isArray(v)) continue;
    if (v.length !== 2)
      throw new WeightError(
        `${indexFile}: component ${JSON.stringify(name)} must be [library, class], got ${JSON.stringify(v)}`,
      );
    const [library, className] = v;
    if (library === null && className === null) {
      absent.push(name);
      continue;
    }
    if (typeof library !== "string" || typeof className !== "string" || !library || !className)
      throw new WeightError(
        `${indexFile}: component ${JSON.stringify(name)} must be [library, class] strings, got ${JSON.stringify(v)}`,
      );
    if (name.includes("/") || name.includes("\\") || name === "." || name === "..")
      throw new WeightError(`${indexFile}: component name ${JSON.stringify(name)} is not a folder name`);
    const path = join(dir, name);
    if (!(await isDir(path)))
      throw new WeightError(
        `${path}: missing folder for component "${name}" (${library}.${className}) listed in ${indexFile}`,
      );
    const configFile = join(path, configFileFor(className));
    const config = await readJsonFile(configFile, `config of component "${name}"`);
    if (!isJsonObject(config)) throw new WeightError(`${configFile}: must be a JSON object`);
    components.set(name, { name, library, className, path, configFile, config });
  }
  if (components.size === 0) throw new WeightError(`${indexFile}: lists no components`);
  return {
    dir,
    pipelineClass: cls,
    ...(typeof version === "string" ? { diffusersVersion: version } : {}),
    components,
    absent,
  };
}

/** Loads one component's weights (its folder's safetensors file, shards or index). */
export async function loadComponentWeights(
  folder: string | DiffusersFolder,
  component: string,
  opts: LoadWeightsOptions = {},
): Promise<WeightStore> {
  const f = typeof folder === "string" ? await openDiffusersFolder(folder) : folder;
  const c = f.components.get(component);
  if (!c) {
    const why = f.absent.includes(component) ? "is listed as absent ([null, null])" : "is not listed";
    throw new WeightError(
      `${join(f.dir, "model_index.json")}: component ${JSON.stringify(component)} ${why}; components: ${[...f.components.keys()].join(", ")}`,
    );
  }
  return loadWeights(c.path, opts);
}
