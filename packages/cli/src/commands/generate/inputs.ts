// The input image(s) and video of a generation: checked to exist while the flags
// are read, decoded at the generation size once the model's size is known.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { type GenerateOptions, type RgbImage, readImage, readVideo, type VideoFrames } from "@tessera/core";
import { UsageError } from "../../args.js";
import type { InputName } from "./flags.js";

/** An input file's absolute path; a missing file is a usage error naming its flag. */
export function checkInput(flag: string, path: string): string {
  if (!existsSync(path)) throw new UsageError(`${flag}: no such file '${path}'`);
  return resolve(path);
}

export interface Inputs {
  image?: RgbImage;
  endImage?: RgbImage;
  video?: VideoFrames;
}

/**
 * Decodes the inputs, each fitted (cover) to the generation size. Video-to-video
 * reads no more frames than it generates; an extension reads the whole clip.
 */
export async function readInputs(
  files: Partial<Record<InputName, string>>,
  size: { width: number; height: number },
  o: Pick<GenerateOptions, "extend" | "frames">,
): Promise<Inputs> {
  const fit = { ...size, fit: "cover" as const };
  const inputs: Inputs = {};
  if (files.image) inputs.image = await readImage(files.image, fit);
  if (files.endImage) inputs.endImage = await readImage(files.endImage, fit);
  if (files.video)
    inputs.video = await readVideo(files.video, {
      ...fit,
      ...(!o.extend && o.frames !== undefined ? { maxFrames: o.frames } : {}),
    });
  return inputs;
}
