// Renders world clips for the trainer as raw files, in parallel worker processes:
//   <out>/part-K.u8     uint8 [n, 17, 128, 128, 3] (frames, height, width, RGB)
//   <out>/part-K.json   { split, seed, first, count, captions: [...], heldOut: [...] }
// Clip i is worldClip(seed, i, split) from @tessera/core's world, so the data is the
// same one definition the scorer checks. Runs where only Node and the built
// packages/core/dist/world are present (the GPU host: no native addon needed).
//   node make_dataset.mjs --out DIR --count N [--seed S] [--split train|heldout] [--workers K] [--world DIR]
import { fork } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: Object.fromEntries(
    ["out", "count", "seed", "split", "workers", "world", "part", "first", "n"].map((k) => [
      k,
      { type: "string" },
    ]),
  ),
});
const out = resolve(args.out ?? "");
const count = Number(args.count);
const seed = Number(args.seed ?? 1);
const split = args.split ?? "train";
const workers = Number(args.workers ?? 8);
const worldDir = resolve(args.world ?? join(here, "../../packages/core/dist/world"));
if (!args.out || !Number.isInteger(count) || count <= 0 || !["train", "heldout"].includes(split)) {
  console.error(
    "usage: node make_dataset.mjs --out DIR --count N [--seed S] [--split train|heldout] [--workers K] [--world DIR]",
  );
  process.exit(2);
}

if (args.part !== undefined) {
  const { worldClip, isHeldOut } = await import(pathToFileURL(join(worldDir, "index.js")).href);
  const part = Number(args.part);
  const first = Number(args.first);
  const n = Number(args.n);
  const fd = openSync(join(out, `part-${part}.u8`), "w");
  const captions = [];
  const heldOut = [];
  for (let i = first; i < first + n; i++) {
    const { scene, caption, video } = worldClip(seed, i, split);
    for (const f of video.frames) writeSync(fd, f);
    captions.push(caption);
    heldOut.push(scene.objects.some((o) => isHeldOut(o.colour, o.shape, o.motion)));
  }
  closeSync(fd);
  writeFileSync(
    join(out, `part-${part}.json`),
    JSON.stringify({ split, seed, first, count: n, captions, heldOut }),
  );
  process.exit(0);
}

mkdirSync(out, { recursive: true });
const per = Math.ceil(count / workers);
const jobs = [];
for (let k = 0; k * per < count; k++) {
  const first = k * per;
  const n = Math.min(per, count - first);
  const argv = [
    "--out",
    out,
    "--count",
    String(count),
    "--seed",
    String(seed),
    "--split",
    split,
    "--world",
    worldDir,
    "--part",
    String(k),
    "--first",
    String(first),
    "--n",
    String(n),
  ];
  jobs.push(
    new Promise((ok, fail) =>
      fork(fileURLToPath(import.meta.url), argv).on("exit", (c) =>
        c === 0 ? ok() : fail(new Error(`part ${k} exited ${c}`)),
      ),
    ),
  );
}
const t0 = Date.now();
await Promise.all(jobs);
console.log(
  `make_dataset: ${count} ${split} clips (seed ${seed}) in ${jobs.length} parts, ${((Date.now() - t0) / 1000).toFixed(1)} s -> ${out}`,
);
