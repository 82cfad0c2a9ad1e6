// What can go wrong with the disk under the data folder, told apart from the rest:
// a full disk (SQLite's SQLITE_FULL, ENOSPC and EDQUOT on files) is the server's
// trouble, never the client's, and passes once space is freed; a folder that cannot
// be written is the operator's to fix. Messages that reach clients name files by
// their base name only, never by the server's paths.
import { basename } from "node:path";

const DISK_FULL_CODES = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);
const FILE_ERROR_CODES = new Set([
  "EACCES",
  "EPERM",
  "EROFS",
  "ENOENT",
  "ENOTDIR",
  "EISDIR",
  "EEXIST",
  "EIO",
]);

/** The first errno-style code in an error or its causes (SqliteError's code too). */
function codeOf(e: unknown): string | null {
  for (let x = e, depth = 0; x && typeof x === "object" && depth < 5; depth++) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === "string" && (DISK_FULL_CODES.has(code) || FILE_ERROR_CODES.has(code))) return code;
    const message = String((x as { message?: unknown }).message);
    if (/database or disk is full/i.test(message)) return "SQLITE_FULL";
    // Tools that report it only in words (ffmpeg writing the video).
    if (/no space left on device/i.test(message)) return "ENOSPC";
    if (/disk quota exceeded/i.test(message)) return "EDQUOT";
    x = (x as { cause?: unknown }).cause;
  }
  return null;
}

/** Whether `e` (or what caused it) is the disk or a quota running out. */
export function isDiskFull(e: unknown): boolean {
  const c = codeOf(e);
  return c !== null && DISK_FULL_CODES.has(c);
}

/** Whether `e` is a file-system refusal (permissions, a read-only mount, a missing folder). */
export function isFileError(e: unknown): boolean {
  const c = codeOf(e);
  return c !== null && FILE_ERROR_CODES.has(c);
}

/** An upload or a write that found the disk full: the server's 507, not the client's 400. */
export class StorageFullError extends Error {
  override name = "StorageFullError";
  constructor(what: string, options?: { cause?: unknown }) {
    super(`the server's disk is full: ${what}; retry once its operator has freed space`, options);
  }
}

// An absolute path after a start, a space, a quote, a parenthesis or '=': URLs ("http://…") do not match.
const ABSOLUTE_PATH = /(^|[\s'"`(=])(\/[^\s'"`),;]*[^\s'"`),;:.])/g;

/** The message with every absolute path cut to its last part. */
export function withoutPaths(message: string): string {
  return message.replace(ABSOLUTE_PATH, (_m, lead: string, path: string) => `${lead}${basename(path)}`);
}

/** A failed run's error as the client sees it: a code, and a message without server paths. */
export function runError(e: unknown, fallbackCode: string): { code: string; message: string } {
  const raw = e instanceof Error ? e.message : String(e);
  if (isDiskFull(e))
    return {
      code: "disk_full",
      message: `the server's disk filled up during this job (${withoutPaths(raw)}); submit it again once space is freed`,
    };
  if (isFileError(e))
    return {
      code: "storage_error",
      message: `the server could not write this job's files (${withoutPaths(raw)}); its data folder needs its operator`,
    };
  return { code: fallbackCode, message: withoutPaths(raw) };
}
