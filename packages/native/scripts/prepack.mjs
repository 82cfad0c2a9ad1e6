// Before `pnpm pack`: copies the repository's native/ sources (the C++ and CUDA files the
// addon is built from) into this package, so that its tarball builds on install with no
// checkout beside it. postpack.mjs removes the copy again.
import { cpSync, existsSync, rmSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const from = join(pkg, "..", "..", "native");
const to = join(pkg, "native");
const sources = new Set([".h", ".hpp", ".cc", ".cu", ".cuh"]);

if (!existsSync(join(pkg, "dist", "index.js"))) {
  console.error("@tessera/native: dist/ is not built; run `pnpm build` before packing.");
  process.exit(1);
}
if (!existsSync(join(from, "include", "tessera", "backend.h"))) {
  console.error(`@tessera/native: the native sources are not at ${from}; pack from a repository checkout.`);
  process.exit(1);
}
rmSync(to, { recursive: true, force: true });
cpSync(from, to, {
  recursive: true,
  filter: (src) => !extname(src) || sources.has(extname(src)),
});
