// After `pnpm pack`: removes the native/ copy that prepack.mjs made, so that builds in the
// checkout keep reading the repository's native/ (CMakeLists.txt prefers it anyway).
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

rmSync(join(dirname(fileURLToPath(import.meta.url)), "..", "native"), { recursive: true, force: true });
