// Writes docs/demo-contact-sheet.png: frames 0, 4, 8, 12 and 16 of the bundled demo
// model's videos for a few prompts (one row each, in the order of PROMPTS), and
// prints the prompts as the model received them, for docs/models.md.
//   node contact-sheet.mjs [--out FILE]
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { DEMO_MODEL_DIR, encodePng, framesFromTensor, WanPipeline } from "@tessera/core";

const PROMPTS = [
  "red ball going right",
  "a blue square moving up on a white background",
  "a purple triangle shrinking, gray background",
  "a yellow circle bouncing on green",
  "a white square moves down and an orange circle stays still on a blue background",
  "a green triangle moving diagonally on a black and white background, camera panning left",
];
const PICK = [0, 4, 8, 12, 16];
const { values } = parseArgs({
  options: {
    out: { type: "string", default: new URL("../docs/demo-contact-sheet.png", import.meta.url).pathname },
  },
});

const pipe = await WanPipeline.load(DEMO_MODEL_DIR);
const size = 128;
const width = size * PICK.length;
const data = new Uint8Array(width * size * PROMPTS.length * 3);
for (const [row, prompt] of PROMPTS.entries()) {
  const r = await pipe.generate({ prompt, seed: row });
  const video = await framesFromTensor(r.video);
  r.video.dispose();
  r.latents.dispose();
  for (const [col, t] of PICK.entries()) {
    const f = video.frames[t];
    for (let y = 0; y < size; y++)
      data.set(f.subarray(y * size * 3, (y + 1) * size * 3), ((row * size + y) * width + col * size) * 3);
  }
  console.log(`${row + 1}. "${prompt}" -> "${r.prompt}" (seed ${row})`);
}
pipe.dispose();
writeFileSync(values.out, encodePng({ width, height: size * PROMPTS.length, data }));
console.log(`wrote ${values.out}`);
