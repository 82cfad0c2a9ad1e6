// Draws docs/gpu-h100.svg from committed GPU result files: each bar is a speed-up of ours
// against PyTorch 2.11 on the same H100 (baseline time / our time; right of the 1.0 line
// is faster). One SVG, no dependencies, so the chart in docs/performance.md is redrawn from the numbers
// whenever a result file changes:
//   node benchmarks/chart.mjs [--out FILE] [--e2e FILE] [--dit FILE] [--attention FILE] [--conv FILE] [--kernels FILE] [--generation FILE]
// --e2e: the end-to-end run (DiT, text encoder, VAE and, where it holds one, the whole
// generation); --dit: a DiT-only run of the same benchmark whose DiT rows replace --e2e's;
// --generation: a wan-e2e.mjs result (e2e-bench.sh generation), for an --e2e run without the
// whole generation.
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

const results = new URL("./results/", import.meta.url);
const { values } = parseArgs({
  options: {
    out: { type: "string", default: new URL("../docs/gpu-h100.svg", import.meta.url).pathname },
    e2e: { type: "string", default: new URL("e2e-h100.json", results).pathname },
    dit: { type: "string" },
    attention: { type: "string", default: new URL("attention-h100.json", results).pathname },
    conv: { type: "string", default: new URL("conv-h100.json", results).pathname },
    kernels: { type: "string", default: new URL("kernels-h100.json", results).pathname },
    generation: { type: "string" },
  },
});
const read = (p) => JSON.parse(readFileSync(p, "utf8"));
const e2e = read(values.e2e);
const dit = values.dit ? read(values.dit) : e2e;
const attn = read(values.attention);
const conv = read(values.conv);
const kernels = read(values.kernels);
const gen = values.generation ? read(values.generation) : e2e.raw["ours-gen"];
if (!gen?.timings)
  throw new Error("chart: --e2e holds no whole generation (ours-gen); pass --generation FILE");

const need = (v, what) => {
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new Error(`chart: no number for ${what} in the result files`);
  return v;
};
const rec = (recs, name) => {
  const r = recs.find((x) => x.name === name);
  if (!r) throw new Error(`chart: no record "${name}"`);
  return r;
};

const groups = [];
{
  const torch = e2e.raw.torch;
  const eagerStep = dit.raw.torch.dit_eager.ms.median;
  const compile = dit.raw.compile.dit_compile;
  const ours = dit.raw["ours-dit"].ms.median;
  const t5 = torch.t5.ms.median;
  const vaeBf16 = torch.vae_bf16.ms.median;
  const total = gen.timings.total;
  // As merge.py composes it: two prompts' text states, 50 steps, the bf16 decode.
  const eagerTotal = 2 * t5 + 50 * eagerStep + vaeBf16;
  const compileTotal = 2 * t5 + 50 * compile.ms.median + vaeBf16;
  groups.push({
    title: "Wan2.1-1.3B, 832x480, 81 frames, bf16",
    bars: [
      { label: "DiT step vs eager", x: need(eagerStep / ours, "DiT eager") },
      { label: "DiT step vs torch.compile", x: need(compile.ms.median / ours, "DiT compile") },
      { label: "umT5-XXL encode (512 tokens)", x: need(t5 / e2e.raw["ours-t5"].full.median, "umT5") },
      { label: "VAE decode, bf16", x: need(vaeBf16 / e2e.raw["ours-vae-bf16"].ms.median, "VAE bf16") },
      {
        label: "VAE decode, f32",
        x: need(torch.vae_f32.ms.median / e2e.raw["ours-vae"].ms.median, "VAE f32"),
      },
      { label: "50-step generation vs eager*", x: need(eagerTotal / total, "generation eager") },
      { label: "50-step generation vs compile*", x: need(compileTotal / total, "generation compile") },
    ],
  });
}
{
  const a = (name, label) => {
    const r = rec(attn.records, name);
    // "default" from kernel-bench.sh attention; "wgmma" in files written before it.
    return { label, x: need(r.torch.ms / (r.ours.default ?? r.ours.wgmma).ms, name) };
  };
  groups.push({
    title: "Attention (Hopper kernel vs best SDPA backend)",
    bars: [
      a("attn.full.d128@81f", "full, 32,760 tokens, 12x128"),
      a("attn.full.d128@81f.b2", "full, batch 2"),
      a("attn.full.d64@81f", "full, head dim 64"),
      a("attn.full.rope.d128@81f", "full + 3D RoPE"),
      a("attn.spatial.d128@81f", "spatial-only grouping"),
      a("attn.cross512.d128@81f", "cross to 512 text keys"),
    ],
  });
}
{
  // From the one-call kernel table: baseline time / ours, against the fastest PyTorch candidate
  // unless a named one is asked for.
  const k = (name, label, candidate) => {
    const r = rec(kernels.records, name);
    const base = candidate ? r.baselineCandidates.find((c) => c.name.includes(candidate))?.ms : r.baselineMs;
    return { label, x: need(base / r.oursMs, `${name} ${candidate ?? ""}`) };
  };
  groups.push({
    title: "Fused and memory-bound kernels (81 frames)",
    bars: [
      k("layernorm.modulate@81f", "LayerNorm + adaLN modulate"),
      k("gated_residual@81f", "gate x + residual"),
      k("attn.temporal.d128@81f", "temporal-only attention"),
      k("patch_embed@81f", "patch embedding vs F.conv3d", "conv3d"),
      k("patch_embed@81f", "patch embedding vs unfold+linear", "unfold"),
    ],
  });
}
groups.push({
  title: "VAE convolutions (our default kernels vs cuDNN)",
  // The default path ("default" from kernel-bench.sh conv), or an older file's wgmma / igemm tag.
  bars: conv.records.map((r) => ({
    label: r.name.replace(/^conv[23]d\./, "").replace("@", " @ "),
    x: need(r.torch.ms / (r.ours.default ?? r.ours.wgmma ?? r.ours.igemm).ms, r.name),
  })),
});

// Layout: a label column, then bars on a linear axis from 0 to xMax.
const W = 760;
const labelW = 250;
const plotW = W - labelW - 60;
const barH = 16;
const gap = 6;
const xMax = Math.max(2, Math.ceil(Math.max(...groups.flatMap((g) => g.bars.map((b) => b.x))) * 2) / 2);
const sx = (x) => labelW + (x / xMax) * plotW;
const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const parts = [];
let y = 44;
for (const g of groups) {
  parts.push(`<text x="8" y="${y + 12}" font-weight="bold">${esc(g.title)}</text>`);
  y += 22;
  for (const b of g.bars) {
    const fill = b.x >= 1 ? "#2f7d4f" : "#b0543a";
    parts.push(
      `<text x="${labelW - 8}" y="${y + 12}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${labelW}" y="${y}" width="${(sx(b.x) - labelW).toFixed(1)}" height="${barH}" fill="${fill}"/>`,
      `<text x="${(sx(b.x) + 4).toFixed(1)}" y="${y + 12}">${b.x.toFixed(2)}x</text>`,
    );
    y += barH + gap;
  }
  y += 10;
}
const top = 30;
const axis = [];
for (let t = 0; t <= xMax + 1e-9; t += 0.5)
  axis.push(
    `<line x1="${sx(t)}" y1="${top}" x2="${sx(t)}" y2="${y - 6}" stroke="${t === 1 ? "#222" : "#ddd"}" stroke-width="${t === 1 ? 1.5 : 1}"/>`,
    `<text x="${sx(t)}" y="${top - 4}" text-anchor="middle" fill="#555">${t.toFixed(1)}</text>`,
  );
const H = y + 24;
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">
<title>Tessera vs PyTorch 2.11 on one H100: speed-ups per measurement</title>
<rect width="${W}" height="${H}" fill="#fff"/>
<text x="8" y="16" font-size="13" font-weight="bold">Tessera vs PyTorch 2.11 on one H100 (speed-up; right of 1.0 is faster)</text>
${axis.join("\n")}
${parts.join("\n")}
<text x="8" y="${H - 8}" fill="#555">${esc(`${dit.date?.slice(0, 10) ?? ""} · commit ${dit.commit} · *PyTorch generation composed from its stage timings · benchmarks/results/`)}</text>
</svg>
`;
writeFileSync(values.out, svg);
console.log(`wrote ${values.out} (${groups.reduce((n, g) => n + g.bars.length, 0)} bars)`);
