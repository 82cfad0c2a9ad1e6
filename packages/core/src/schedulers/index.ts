import type { FlowScheduler, SchedulerName } from "./common.js";
import { FlowMatchEulerScheduler } from "./euler.js";
import { UniPCMultistepScheduler } from "./unipc.js";

export {
  type ExplicitSchedule,
  type FlowScheduler,
  linspace,
  type SchedulerName,
  shiftSigma,
  startIndexForStrength,
} from "./common.js";
export { type FlowMatchEulerOptions, FlowMatchEulerScheduler } from "./euler.js";
export { UniPCMultistepScheduler, type UniPCOptions } from "./unipc.js";

/** Wan2.1's sampling defaults (generate.py and diffusers' WanPipeline). */
export const WAN_SAMPLING_DEFAULTS = {
  scheduler: "unipc" as SchedulerName,
  /** generate.py: 5.0; 3.0 for image-to-video at 480p (diffusers' docs: 3.0 for 480p). */
  shift: 5.0,
  steps: 50,
  guidance: 5.0,
  fps: 16,
  textLength: 512,
};

/** A scheduler by name. */
export function createScheduler(
  name: SchedulerName,
  opts: { shift?: number; numTrainTimesteps?: number } = {},
): FlowScheduler {
  switch (name) {
    case "euler":
      return new FlowMatchEulerScheduler(opts);
    case "unipc":
      return new UniPCMultistepScheduler(opts);
    default:
      throw new RangeError(`unknown scheduler '${name as string}'; use 'unipc' or 'euler'`);
  }
}

/**
 * Reads a diffusers scheduler_config.json (scheduler/ of a model folder): which
 * scheduler and its shift. Only the flow-matching settings Wan uses are taken;
 * anything else is rejected rather than silently sampled differently.
 */
export function schedulerFromConfig(config: Record<string, unknown>): {
  name: SchedulerName;
  shift: number;
  numTrainTimesteps: number;
} {
  const cls = config._class_name;
  const numTrainTimesteps =
    typeof config.num_train_timesteps === "number" ? config.num_train_timesteps : 1000;
  if (cls === "UniPCMultistepScheduler") {
    if (
      config.use_flow_sigmas === false ||
      (config.prediction_type ?? "flow_prediction") !== "flow_prediction"
    )
      throw new Error(
        "scheduler_config.json: only UniPC with use_flow_sigmas and flow_prediction is supported",
      );
    const shift = typeof config.flow_shift === "number" ? config.flow_shift : 1;
    return { name: "unipc", shift, numTrainTimesteps };
  }
  if (cls === "FlowMatchEulerDiscreteScheduler") {
    if (config.use_dynamic_shifting === true)
      throw new Error("scheduler_config.json: dynamic shifting is not supported");
    const shift = typeof config.shift === "number" ? config.shift : 1;
    return { name: "euler", shift, numTrainTimesteps };
  }
  throw new Error(`scheduler_config.json: unsupported scheduler '${String(cls)}'`);
}
