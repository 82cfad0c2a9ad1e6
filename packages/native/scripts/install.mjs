// npm's install step for @tessera/native: builds the addon from the packed sources when it is
// not there yet (an install from the tarball). In the repository checkout it does nothing:
// `pnpm build` builds the addon there.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const packed = existsSync(join(pkg, "native", "include", "tessera", "backend.h"));
if (!packed || existsSync(join(pkg, "build", "Release", "tessera.node"))) process.exit(0);

const cmakeJs = createRequire(import.meta.url).resolve("cmake-js/bin/cmake-js");
console.log(
  "@tessera/native: building the native addon from source (cmake, C++17; CUDA where nvcc is found)",
);
const r = spawnSync(process.execPath, [cmakeJs, "compile", "--log-level", "warn", "-O", "build"], {
  cwd: pkg,
  stdio: "inherit",
});
if (r.status !== 0) {
  console.error(
    "@tessera/native: building the native addon failed (see above). It needs cmake >= 3.20 and a C++17 " +
      "compiler on PATH; set TESSERA_NO_CUDA=1 to build without the CUDA backend, then reinstall.",
  );
  process.exit(r.status ?? 1);
}
