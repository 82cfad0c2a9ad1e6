// What each surface calls the parameter behind a generate() option, so an error
// from the library can name what the user typed: the option "width" is the CLI's
// --size and the API's "size"; "negativePrompt" is --negative and "negative_prompt".
import { GENERATION_PARAMS } from "./generation.js";
import type { ParamSpec } from "./types.js";

/**
 * The declaration a surface carries for the generate() option `key`: the parameter
 * itself, or the surface's spelling of it (size for width and height). Undefined
 * when the surface does not carry it.
 */
export function spellingOn(surface: "server" | "cli", key: string): ParamSpec | undefined {
  const params: readonly ParamSpec[] = GENERATION_PARAMS;
  const on = params.filter((p) => p.surfaces.includes(surface));
  return on.find((p) => p.key === key) ?? on.find((p) => p.spells?.includes(key));
}

/** How the CLI names the option `key`: "--size", "PROMPT"; `--key` when it has no flag. */
export function cliName(key: string): string {
  const cli = spellingOn("cli", key)?.cli;
  if (!cli) return `--${key}`;
  return cli.positional ? cli.flag : `--${cli.flag}`;
}

/** The API field for the option `key` ("size" for width); the key itself when the API has none. */
export function serverName(key: string): string {
  return spellingOn("server", key)?.server?.field ?? key;
}
