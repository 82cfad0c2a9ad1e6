// File-system faults for tests: a small tmpfs to fill up, and a read-only bind mount.
// Both need mount(2) (root, or CAP_SYS_ADMIN); where it is refused the helpers say
// why, and the tests that need them skip with that reason.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Why mounting is not possible here, or null when it is (checked once, with a 1 MB tmpfs). */
export const MOUNT_UNAVAILABLE: string | null = (() => {
  if (process.platform !== "linux") return "mounting a tmpfs needs Linux";
  const dir = mkdtempSync(join(tmpdir(), "tessera-mount-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir], { stdio: "pipe" });
    execFileSync("umount", [dir], { stdio: "pipe" });
    return null;
  } catch (e) {
    const why = String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim();
    return `cannot mount a tmpfs here (${why.split("\n")[0] || "mount refused"}): run as root or with CAP_SYS_ADMIN`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

/** A tmpfs of `sizeMb` at a fresh folder; unmount() removes it. */
export function mountTmpfs(sizeMb: number): { dir: string; unmount(): void } {
  const dir = mkdtempSync(join(tmpdir(), "tessera-tmpfs-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMb}m`, "tmpfs", dir], { stdio: "pipe" });
  return {
    dir,
    unmount() {
      execFileSync("umount", ["-l", dir], { stdio: "pipe" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Makes `dir` read-only in place (a read-only bind mount over itself); the returned function undoes it. */
export function bindReadOnly(dir: string): () => void {
  execFileSync("mount", ["--bind", dir, dir], { stdio: "pipe" });
  execFileSync("mount", ["-o", "remount,bind,ro", dir], { stdio: "pipe" });
  return () => execFileSync("umount", [dir], { stdio: "pipe" });
}

/** Fills the file system holding `dir` to the last byte with `dir/<name>`; free() deletes it. */
export async function fillDisk(dir: string, name = "filler"): Promise<{ free(): Promise<void> }> {
  const file = join(dir, name);
  const fh = await open(file, "w");
  try {
    // Whole MiBs, then pages, then bytes, each until the kernel says ENOSPC.
    for (const size of [1 << 20, 1 << 12, 1]) {
      const buf = Buffer.alloc(size);
      for (;;) {
        try {
          await fh.write(buf);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
          break;
        }
      }
    }
  } finally {
    await fh.close().catch(() => {});
  }
  return { free: () => rm(file, { force: true }) };
}
