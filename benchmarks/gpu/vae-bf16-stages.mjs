// Where the bf16 VAE encode's error arises, on a GPU host (no vitest there): the
// fixture written by training/make_golden_vae_diffusers.py holds diffusers' float64
// encoder stage outputs (inter.encode.*) and the same under bf16 autocast. For each
// stage this runs our encoder in bf16 over the same chunks and reports
//   - propagated: our bf16 run from the input, against float64;
//   - local: the stage alone, fed the float64 output of the stage before (cast to bf16);
//   - torch: PyTorch's autocast run against float64 (propagated);
// and the whole encode and decode in bf16 and f32 against float64.
// Usage: node vae-bf16-stages.mjs FIXTURE [--device cuda] [--out FILE]
import { writeFileSync } from "node:fs";
import { inspectWeights, loadWeights, WanVAE, wanVaeLayout } from "@tessera/core";
import { cast, Device, scope, silu, slice } from "@tessera/native";

const args = process.argv.slice(2);
const fixture = args[0];
const opt = (k, d) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1] : d;
};
const device = Device.parse(opt("--device", "cuda"));
const outPath = opt("--out", null);
// The stages run in this dtype (f32 checks the script itself on a CPU).
const stageDtype = opt("--dtype", "bf16");
const { WanVaeNet } = await import(
  new URL("./node_modules/@tessera/core/dist/models/wan-vae/net.js", import.meta.url)
);
const { FeatureCache } = await import(
  new URL("./node_modules/@tessera/core/dist/models/wan-vae/cache.js", import.meta.url)
);

const isData = (n) => /^(input|output|output_bf16|output_bf16_cast|inter|inter_bf16)\./.test(n);
const inv = await inspectWeights(fixture);
const meta = inv.metadata.get(inv.files[0]) ?? {};
const config = JSON.parse(meta.config);
const data = await loadWeights(fixture, { filter: isData });

function relErr(a, r) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < r.length; i++) {
    num += (a[i] - r[i]) ** 2;
    den += r[i] ** 2;
  }
  return Math.sqrt(num / den);
}
const onDevice = async (name, dtype) => {
  const t = await data.get(name).to(device);
  if (t.dtype === dtype) return t;
  const c = cast(t, dtype);
  t.dispose();
  return c;
};
const host = (t) => t.toFloat32Array();

const report = {
  fixture,
  date: new Date().toISOString(),
  commit: process.env.COMMIT ?? "unknown",
  device: device.info(),
  meta: JSON.parse(meta.errors ?? "{}"),
  outputs: {},
  stages: [],
};

for (const dtype of stageDtype === "f32" ? ["f32"] : ["f32", "bf16"]) {
  const weights = await loadWeights(fixture, { filter: (n) => !isData(n), device, dtype });
  const vae = new WanVAE(config, weights);
  const video = await onDevice("input.video", dtype);
  const z = vae.encode(video);
  const lat = await onDevice("input.decode_latents_normalized", dtype);
  const y = vae.decode(lat);
  for (const [k, t] of [
    ["encode_latents", z],
    ["decode", y],
  ]) {
    const ref = await host(data.get(`output.${k}`));
    report.outputs[k] ??= {};
    const row = report.outputs[k];
    row[`ours_${dtype}`] = relErr(await host(t), ref);
    if (data.has(`output_bf16.${k}`))
      row.torch_bf16_autocast = relErr(await host(data.get(`output_bf16.${k}`)), ref);
    if (data.has(`output_bf16_cast.${k}`))
      row.torch_bf16_cast = relErr(await host(data.get(`output_bf16_cast.${k}`)), ref);
  }
  for (const t of [video, z, lat, y]) t.dispose();
  weights.dispose();
}

// Stage by stage in bf16, chunked as the encoder runs (frames [0, 1), then 4 at a time).
if (!data.has("inter.encode.conv_in")) {
  console.log(JSON.stringify(report.outputs));
  console.log("no inter.encode.* tensors in the fixture: stages not compared");
  if (outPath) writeFileSync(outPath, `${JSON.stringify(report, null, 1)}\n`);
  process.exit(0);
}
const weights = await loadWeights(fixture, { filter: (n) => !isData(n), device, dtype: stageDtype });
const layout = wanVaeLayout(config);
const netProp = new WanVaeNet(layout, weights);
const netLocal = new WanVaeNet(layout, weights);
const stages = [
  ["conv_in", (net, c, h) => net.conv(c, "encoder.conv_in", h)],
  ...layout.encoder.layers.map((l) => [l.name.replace(/^encoder\./, ""), (net, c, h) => net.layer(c, l, h)]),
  ["mid_block", (net, c, h) => net.mid(c, "encoder", h)],
  ["conv_out", (net, c, h) => net.conv(c, "encoder.conv_out", silu(net.rms(h, "encoder.norm_out")))],
];
const video = await onDevice("input.video", stageDtype);
const t = video.shape[1];
const chunks = [[0, 1]];
for (let s = 1; s < t; s += 4) chunks.push([s, s + 4]);
const cacheProp = new FeatureCache();
const cacheLocal = new FeatureCache();
const outsProp = stages.map(() => []);
const outsLocal = stages.map(() => []);
const frameAt = stages.map(() => 0);
const refs = [];
for (const [name] of stages) refs.push(await onDevice(`inter.encode.${name}`, "f32"));
for (const [s, e] of chunks) {
  let h = slice(video, 1, s, e);
  for (let i = 0; i < stages.length; i++) {
    const [, fn] = stages[i];
    const hNext = scope(() => fn(netProp, cacheProp, h));
    const f = hNext.shape[1];
    let inLocal;
    if (i === 0) inLocal = slice(video, 1, s, e);
    else {
      const prevRef = refs[i - 1];
      const pf = outsLocal[i - 1].at(-1).frames;
      inLocal = cast(slice(prevRef, 1, frameAt[i - 1] - pf, frameAt[i - 1]), stageDtype);
    }
    const yLocal = scope(() => fn(netLocal, cacheLocal, inLocal));
    outsProp[i].push({ data: await host(hNext), frames: f });
    outsLocal[i].push({ data: await host(yLocal), frames: f });
    frameAt[i] += f;
    yLocal.dispose();
    h = hNext;
  }
}
for (let i = 0; i < stages.length; i++) {
  const ref = refs[i];
  const [b, f, hh, w, c] = ref.shape;
  const r = await host(ref);
  // The chunks' outputs joined along time (dim 1) of [B, F, H, W, C].
  const per = hh * w * c;
  const joinT = (parts) => {
    const out = new Float32Array(r.length);
    let f0 = 0;
    for (const p of parts) {
      for (let bi = 0; bi < b; bi++)
        for (let fi = 0; fi < p.frames; fi++)
          out.set(
            p.data.subarray((bi * p.frames + fi) * per, (bi * p.frames + fi + 1) * per),
            (bi * f + f0 + fi) * per,
          );
      f0 += p.frames;
    }
    return out;
  };
  const name = stages[i][0];
  const row = {
    stage: name,
    shape: [b, f, hh, w, c],
    ours_propagated: relErr(joinT(outsProp[i]), r),
    ours_local: relErr(joinT(outsLocal[i]), r),
  };
  if (data.has(`inter_bf16.encode.${name}`))
    row.torch_autocast_propagated = relErr(await host(data.get(`inter_bf16.encode.${name}`)), r);
  report.stages.push(row);
  console.log(JSON.stringify(row));
}
console.log(JSON.stringify(report.outputs));
if (outPath) writeFileSync(outPath, `${JSON.stringify(report, null, 1)}\n`);
