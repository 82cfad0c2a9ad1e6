// Merges the raw files of scripts/gpu/multigpu.sh (raw-check-N.json, raw-ours-CONFIG-SIZE-N.json,
// raw-torch-CONFIG-SIZE-N-STRATEGY.json) into one result JSON and a Markdown table with a chart.
//
//   node multigpu-merge.mjs --dir DIR --out FILE.json [--md FILE.md] [--gpu NAME] [--gpus N] [--commit C]
//
// Step times are per denoising step with both guidance branches; where fewer blocks than the
// model's were run, `ms` is the measured time scaled to all blocks (extrapolatedMs). Scaling
// efficiency at N GPUs = t(1) / (N · t(N)). The issue's target: ≥ 80 % from 1 to 4 GPUs at 720p.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const args = process.argv.slice(2);
const arg = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const dir = arg("--dir", ".");
const outPath = arg("--out");
const mdPath = arg("--md");
if (!outPath) {
  console.error("usage: node multigpu-merge.mjs --dir DIR --out FILE.json [--md FILE.md]");
  process.exit(2);
}

const read = (f) => {
  try {
    return JSON.parse(readFileSync(join(dir, f), "utf8"));
  } catch (e) {
    return { error: `unreadable ${f}: ${e.message}` };
  }
};
const files = readdirSync(dir).filter((f) => /^raw-.*\.json$/.test(f));

const checks = [];
const runs = []; // { impl, config, size, gpus, strategy, ms, measuredMs, layers, numLayers, peakBytes, error, skipped, check }
for (const f of files) {
  let m = /^raw-check-(\d+)\.json$/.exec(f);
  if (m) {
    const d = read(f);
    checks.push({ worldSize: Number(m[1]), pass: d.pass === true, checks: d.checks ?? [], error: d.error });
    continue;
  }
  m = /^raw-(ours|torch)-(.+)-(\d+x\d+)-(\d+)(?:-(\w+))?\.json$/.exec(f);
  if (!m) continue;
  const d = read(f);
  const median = d.stepMs?.median;
  runs.push({
    impl: m[1] === "ours" ? "tessera" : "pytorch",
    config: m[2],
    size: m[3],
    gpus: Number(m[4]),
    strategy: d.strategy ?? m[5] ?? "?",
    ms: d.extrapolatedMs ?? median ?? null,
    measuredMs: median ?? null,
    layers: d.layers,
    numLayers: d.numLayers,
    tokens: d.tokens,
    peakBytes: d.perRank ? Math.max(...d.perRank.map((r) => r.peakBytes)) : (d.peakBytes ?? null),
    ...(d.error ? { error: String(d.error).split("\n")[0] } : {}),
    ...(d.skipped ? { skipped: d.skipped } : {}),
    ...(d.check ? { check: d.check } : {}),
  });
}
checks.sort((a, b) => a.worldSize - b.worldSize);

// Per (impl, config, size): the fastest run at each GPU count, its speed-up and efficiency vs 1 GPU.
const shapes = [...new Set(runs.map((r) => `${r.config} ${r.size}`))].sort();
const summary = [];
for (const shape of shapes) {
  for (const impl of ["tessera", "pytorch"]) {
    const rs = runs.filter((r) => `${r.config} ${r.size}` === shape && r.impl === impl && r.ms);
    if (rs.length === 0) continue;
    const best = new Map();
    for (const r of rs) if (!best.has(r.gpus) || r.ms < best.get(r.gpus).ms) best.set(r.gpus, r);
    const one = best.get(1)?.ms;
    const rows = [...best.values()]
      .sort((a, b) => a.gpus - b.gpus)
      .map((r) => ({
        gpus: r.gpus,
        strategy: r.strategy,
        ms: r.ms,
        speedup: one ? one / r.ms : null,
        efficiency: one ? one / (r.gpus * r.ms) : null,
      }));
    const e4 = rows.find((r) => r.gpus === 4)?.efficiency ?? null;
    summary.push({
      shape,
      impl,
      rows,
      ...(shape.endsWith("1280x720") && impl === "tessera" && e4 !== null
        ? { target: { efficiency1to4: e4, goal: 0.8, met: e4 >= 0.8 } }
        : {}),
    });
  }
}

const result = {
  what: "Multi-GPU step time (issue #8): one denoising step with both guidance branches, Wan2.1 configs with random bf16 weights, 81 frames; ours (NCCL, one process per GPU) and PyTorch + NCCL Ulysses",
  date: new Date().toISOString(),
  gpu: arg("--gpu", "?"),
  gpusOnHost: Number(arg("--gpus", 0)),
  commit: arg("--commit", "unknown"),
  check: checks,
  summary,
  runs,
};
writeFileSync(outPath, `${JSON.stringify(result, null, 1)}\n`);

if (mdPath) {
  const fmt = (ms) =>
    ms == null ? "–" : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
  const pct = (x) => (x == null ? "–" : `${Math.round(x * 100)} %`);
  const lines = [
    `# Multi-GPU step time — ${result.gpu} × ${result.gpusOnHost}`,
    "",
    `${result.what}. Commit ${result.commit}, ${result.date.slice(0, 10)}.`,
    "",
    `Checks (N ranks vs one GPU): ${checks.length === 0 ? "not run" : checks.map((c) => `${c.worldSize} ranks ${c.pass ? "pass" : "FAIL"}`).join(", ")}.`,
    "",
  ];
  for (const shape of shapes) {
    lines.push(
      `## ${shape}, 81 frames`,
      "",
      "| GPUs | ours | strategy | speed-up | efficiency | PyTorch | strategy | speed-up | efficiency |",
    );
    lines.push("|---:|---:|---|---:|---:|---:|---|---:|---:|");
    const ours = summary.find((s) => s.shape === shape && s.impl === "tessera")?.rows ?? [];
    const torch = summary.find((s) => s.shape === shape && s.impl === "pytorch")?.rows ?? [];
    const counts = [...new Set([...ours, ...torch].map((r) => r.gpus))].sort((a, b) => a - b);
    for (const n of counts) {
      const o = ours.find((r) => r.gpus === n);
      const t = torch.find((r) => r.gpus === n);
      lines.push(
        `| ${n} | ${fmt(o?.ms)} | ${o?.strategy ?? "–"} | ${o?.speedup?.toFixed(2) ?? "–"}× | ${pct(o?.efficiency)} | ${fmt(t?.ms)} | ${t?.strategy ?? "–"} | ${t?.speedup?.toFixed(2) ?? "–"}× | ${pct(t?.efficiency)} |`,
      );
    }
    // A text chart of the speed-up (each # is 0.25×).
    lines.push("", "```");
    for (const n of counts) {
      const o = ours.find((r) => r.gpus === n);
      const t = torch.find((r) => r.gpus === n);
      const bar = (x) => (x ? "#".repeat(Math.round(x * 4)) : "");
      lines.push(`${String(n).padStart(2)} GPU ours    ${bar(o?.speedup)} ${o?.speedup?.toFixed(2) ?? ""}`);
      lines.push(`${String(n).padStart(2)} GPU PyTorch ${bar(t?.speedup)} ${t?.speedup?.toFixed(2) ?? ""}`);
    }
    lines.push("```", "");
    const partial = runs.find((r) => `${r.config} ${r.size}` === shape && r.layers && r.layers < r.numLayers);
    if (partial)
      lines.push(`Measured with ${partial.layers} of ${partial.numLayers} blocks, scaled to all.`, "");
    for (const r of runs.filter((r) => `${r.config} ${r.size}` === shape && (r.error || r.skipped)))
      lines.push(`- ${r.impl} on ${r.gpus} GPU(s) (${r.strategy}): ${r.error ?? r.skipped}`);
    lines.push("");
  }
  writeFileSync(mdPath, `${lines.join("\n")}\n`);
}
console.log(`merged ${files.length} raw files into ${outPath}${mdPath ? ` and ${mdPath}` : ""}`);
