// The shape of a generation parameter's declaration. Everything here is plain
// data, free of the native addon, so the server can derive its request schema
// from it without loading a model (`@tessera/core/params`).
import type { GenerationDefaults } from "../pipelines/options.js";

/** Where a parameter is accepted: generate() options, the HTTP API's request, `tessera generate` flags. */
export type Surface = "library" | "server" | "cli";

/** A model limit a bound may name; known once the model folder is read (ModelLimits). */
export type ModelBound = "sideMultiple" | "maxSide" | "maxFrames";
export type Bound = number | ModelBound;

export type ValueType =
  | {
      kind: "integer";
      min: Bound;
      max: Bound;
      /** Pixels: a multiple of the model's side multiple (VAE factor × patch). */
      multipleOf?: "sideMultiple";
      /** Frames: 1 + temporalFactor·k (1, 5, 9, … for Wan). */
      temporal?: boolean;
    }
  | {
      kind: "number";
      min: number;
      max: number;
      exclusiveMin?: boolean;
      /** A value that switches the feature off, accepted besides the range (stepCache: false). */
      off?: false;
    }
  | { kind: "boolean" }
  | { kind: "text"; maxLength?: number }
  | { kind: "choice"; choices: readonly string[] }
  /** WIDTHxHEIGHT, each side checked as the width and height parameters are. */
  | { kind: "size" }
  /**
   * An image or a video: a file on the CLI, an upload on the server, pixels or a tensor in
   * the library. Embeddings (text-encoder states): a tensor in the library, a
   * .safetensors file on the CLI.
   */
  | { kind: "input"; media: "image" | "video" | "embeddings" }
  /** A list of numbers, each in range, strictly decreasing (a schedule); "1000,750,500" on the CLI. */
  | { kind: "numbers"; min: number; max: number; exclusiveMin?: boolean; maxItems: number }
  /**
   * LoRAs with their strengths: files ({ path }) or names in a LoRA folder ({ name })
   * in the library, names on the server, FILE[:STRENGTH] flags on the CLI.
   */
  | { kind: "loras"; maxItems: number; strength: { min: number; max: number; default: number } };

export type ParamDefault =
  /** The same for every model. */
  | { value: number | string | boolean }
  /** From the model folder's defaults (tessera.json, the scheduler config, else Wan's). */
  | { model: keyof GenerationDefaults | readonly (keyof GenerationDefaults)[] }
  /** Worked out per run (a random seed, a share of the output). */
  | { note: string };

export interface CliSpelling {
  /** The flag without its dashes, or the positional's name (PROMPT). */
  flag: string;
  positional?: boolean;
  /** What the value looks like in help: N, X, WxH, FILE, TEXT. */
  value?: string;
  /** A boolean flag that switches the parameter off (--no-rewrite sets rewrite false). */
  negates?: boolean;
  /** Help text when the flag reads differently from the parameter (a negating flag). */
  description?: string;
  /** The flag may be given more than once; its values add up (--lora A --lora B). */
  repeatable?: boolean;
}

export interface ServerSpelling {
  /** The JSON field (also the multipart part's name). */
  field: string;
  /** A multipart/form-data file part rather than a JSON field. */
  upload?: boolean;
  /** Added to the description in /openapi.json. */
  note?: string;
  example?: string;
}

export interface ParamSpec {
  /** The generate() option when the library carries it; else the parameter's name in the schema. */
  key: string;
  /** One line: what it does. */
  description: string;
  type: ValueType;
  default?: ParamDefault;
  required?: boolean;
  surfaces: readonly Surface[];
  server?: ServerSpelling;
  cli?: CliSpelling;
  /**
   * A surface's spelling of other parameters: the generate() options its value sets
   * (size → width and height; seconds → frames).
   */
  spells?: readonly string[];
  /** Parameters that cannot be given with this one (seconds and frames). */
  exclusiveWith?: readonly string[];
  /** Said after the range in messages and help ("0.05 to 0.2 are typical"). */
  hint?: string;
}
