// `tessera keys`: the API keys `tessera serve` accepts, kept in its data folder
// (only their SHA-256), so keys can be made and revoked while the server runs.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Store } from "@tessera/server";
import { UsageError } from "../args.js";
import { type Flags, noArguments, readFlags } from "../flags.js";
import type { CommandHelp } from "../help.js";
import { dataFlag, SERVICE_FLAGS } from "./service.js";

const DATA = { data: SERVICE_FLAGS.data } as const satisfies Flags;
const CREATE_FLAGS = {
  name: { kind: "string", value: "NAME", description: "a note saying whose key it is" },
  ...DATA,
} as const satisfies Flags;
const LIST_FLAGS = {
  ...DATA,
  json: { kind: "boolean", description: "print the keys as JSON" },
} as const satisfies Flags;

export const KEYS_HELP: CommandHelp = {
  usage: [
    "keys create [--name NAME] [--data DIR]",
    "keys list [--data DIR] [--json]",
    "keys revoke KEY_ID|KEY [--data DIR]",
  ],
  summary: "Make, list and revoke the API keys `tessera serve` accepts (with none, it runs in open mode).",
  flags: { ...CREATE_FLAGS, ...LIST_FLAGS },
};

async function openStore(dataDir: string): Promise<Store> {
  const { Store } = await import("@tessera/server");
  mkdirSync(dataDir, { recursive: true });
  return new Store(join(dataDir, "tessera.db"));
}

export async function keysCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "create": {
      const { values, positionals } = readFlags(rest, CREATE_FLAGS);
      noArguments("keys create", positionals);
      const store = await openStore(dataFlag(values.data));
      try {
        const { key, info } = store.createKey(values.name ?? "");
        out(key);
        out(
          `# ${info.id}${info.name ? ` (${info.name})` : ""}: shown once, only its SHA-256 is stored. Use it as Authorization: Bearer <key>.`,
        );
        return 0;
      } finally {
        store.close();
      }
    }
    case "list": {
      const { values } = readFlags(rest, LIST_FLAGS);
      const store = await openStore(dataFlag(values.data));
      try {
        const keys = store.listKeys();
        if (values.json) {
          out(JSON.stringify(keys, null, 2));
          return 0;
        }
        if (keys.length === 0) out("no API keys: the server runs in open mode");
        const when = (ms: number | null) =>
          ms === null ? "-" : new Date(ms).toISOString().slice(0, 19).replace("T", " ");
        for (const k of keys)
          out(
            `${k.id}  ${k.prefix.padEnd(12)} ${(k.name || "-").padEnd(16)} created ${when(k.createdAt)}  last used ${when(k.lastUsedAt)}${k.revokedAt ? `  REVOKED ${when(k.revokedAt)}` : ""}`,
          );
        return 0;
      } finally {
        store.close();
      }
    }
    case "revoke": {
      const { values, positionals } = readFlags(rest, DATA);
      const target = positionals[0];
      if (!target || positionals.length > 1)
        throw new UsageError("keys revoke takes one key id (key_…) or the key itself");
      const store = await openStore(dataFlag(values.data));
      try {
        if (!store.revokeKey(target))
          throw new UsageError(`no active key '${target.slice(0, 12)}'; see tessera keys list`);
        out(`revoked ${target.startsWith("tsk_") ? `${target.slice(0, 10)}…` : target}`);
        if (!store.hasActiveKeys())
          out(
            "no active key is left: the server now refuses every /v1 request until a key is made (`tessera keys create`), or runs with --open",
          );
        return 0;
      } finally {
        store.close();
      }
    }
    default:
      throw new UsageError(`keys needs create, list or revoke${sub ? `, got '${sub}'` : ""}`);
  }
}
