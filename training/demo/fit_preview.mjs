// Fits the demo model's live-preview map (normalised latents → RGB, one linear map
// with a bias) by least squares over world clips encoded by its own VAE, and writes
// it into the model folder's tessera.json as preview.latentRgb. Reports the mean
// absolute error (on the 0–255 scale) of the map on clips it was not fitted on.
//   node fit_preview.mjs [--model DIR] [--clips N] [--seed S] [--write]
// Needs the built packages/core (pnpm build).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    clips: { type: "string", default: "96" },
    seed: { type: "string", default: "7" },
    write: { type: "boolean", default: false },
  },
});
const dist = join(here, "../../packages/core/dist");
const core = await import(pathToFileURL(join(dist, "index.js")).href);
const world = await import(pathToFileURL(join(dist, "world/index.js")).href);
const modelDir = resolve(args.model ?? core.DEMO_MODEL_DIR);
const clips = Number(args.clips);
const seed = Number(args.seed);

const pipeline = await core.WanPipeline.load(modelDir, {});
const vae = pipeline.vae;
const z = vae.config.z_dim;

async function pair(index, split) {
  const { video } = world.worldClip(seed, index, split);
  const px = core.tensorFromFrames(video);
  const lat = vae.encode(px);
  px.dispose();
  const latents = await lat.toFloat32Array();
  const [, f, h, w] = lat.shape;
  lat.dispose();
  const targets = core.latentGridTargets(
    video.frames,
    video.width,
    video.height,
    vae.spatialFactor,
    vae.temporalFactor,
  );
  return { latents, targets, shape: [f, h, w, z] };
}

const train = [];
for (let i = 0; i < clips; i++) train.push(await pair(i, "train"));
const projection = core.fitLatentRgbProjection(train, z);

// Error on held-out clips, in RGB8 units, against what the grid cells really hold.
let err = 0;
let n = 0;
for (let i = 0; i < 16; i++) {
  const p = await pair(i, "heldout");
  const got = core.projectLatents(p.latents, p.shape, projection);
  const cells = p.shape[1] * p.shape[2];
  got.frames.forEach((frame, t) => {
    for (let c = 0; c < cells * 3; c++) {
      const want = Math.max(0, Math.min(255, Math.round((p.targets[t * cells * 3 + c] + 1) * 127.5)));
      err += Math.abs(frame[c] - want);
      n++;
    }
  });
}
console.log(`fitted on ${clips} clips; held-out mean absolute error ${(err / n).toFixed(2)} / 255`);
console.log(JSON.stringify(projection));
if (args.write) {
  const file = join(modelDir, "tessera.json");
  const json = JSON.parse(readFileSync(file, "utf8"));
  json.preview = { latentRgb: projection };
  // One [r, g, b] row to a line.
  const text = JSON.stringify(json, null, 2).replace(
    /\[\s+(-?[\d.e-]+),\s+(-?[\d.e-]+),\s+(-?[\d.e-]+)\s+\]/g,
    "[$1, $2, $3]",
  );
  writeFileSync(file, `${text}\n`);
  console.log(`wrote ${file}`);
}
pipeline.dispose();
