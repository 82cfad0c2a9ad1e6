// --prompt-embeds FILE / --negative-prompt-embeds FILE: text-encoder states from a
// .safetensors file, for people with their own text encoder (diffusers'
// prompt_embeds). A file holds one tensor, or tensors named as diffusers names the
// pipeline's arguments: prompt_embeds and/or negative_prompt_embeds. A --prompt-embeds
// file that holds both gives the negative too, unless --negative-prompt-embeds is given.
import { inspectWeights, loadWeights, promptEmbedsProblem, type WeightStore } from "@tessera/core";
import { cliName } from "@tessera/core/params";
import type { Tensor } from "@tessera/native";
import { UsageError } from "../../args.js";

export interface GivenEmbeds {
  promptEmbeds?: Tensor;
  negativePromptEmbeds?: Tensor;
  /** Frees the tensors read. */
  dispose(): void;
}

type Key = "promptEmbeds" | "negativePromptEmbeds";
const NAME: Record<Key, string> = {
  promptEmbeds: "prompt_embeds",
  negativePromptEmbeds: "negative_prompt_embeds",
};

// The tensor names a file offers for each option.
async function pick(key: Key, path: string): Promise<Partial<Record<Key, string>>> {
  const flag = cliName(key);
  let names: string[];
  try {
    names = [...(await inspectWeights(path)).tensors.keys()];
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
  if (names.length === 1) return { [key]: names[0] as string };
  const got: Partial<Record<Key, string>> = {};
  if (names.includes(NAME[key])) got[key] = NAME[key];
  if (key === "promptEmbeds" && names.includes(NAME.negativePromptEmbeds))
    got.negativePromptEmbeds = NAME.negativePromptEmbeds;
  if (got[key] === undefined)
    throw new UsageError(
      `${flag}: ${path} holds ${names.length} tensors (${names.slice(0, 5).join(", ")}${names.length > 5 ? ", …" : ""}) and none named ${NAME[key]}; give a file with one tensor, or name it ${NAME[key]}`,
    );
  return got;
}

/**
 * Reads the embeddings files and checks them against the model's text_dim and text
 * length (a UsageError naming the flag), before any weight is loaded.
 */
export async function readEmbeds(
  files: Partial<Record<Key, string>>,
  textDim: number,
  textLength: number,
): Promise<GivenEmbeds> {
  const stores: WeightStore[] = [];
  const out: GivenEmbeds = {
    dispose: () => {
      for (const s of stores) s.dispose();
    },
  };
  try {
    const wanted: [Key, string, string][] = []; // option, file, tensor name
    if (files.promptEmbeds) {
      const got = await pick("promptEmbeds", files.promptEmbeds);
      for (const [k, n] of Object.entries(got) as [Key, string][])
        if (k === "promptEmbeds" || !files.negativePromptEmbeds) wanted.push([k, files.promptEmbeds, n]);
    }
    if (files.negativePromptEmbeds) {
      const got = await pick("negativePromptEmbeds", files.negativePromptEmbeds);
      wanted.push(["negativePromptEmbeds", files.negativePromptEmbeds, got.negativePromptEmbeds as string]);
    }
    for (const [key, file, name] of wanted) {
      const store = await loadWeights(file, { filter: (n) => n === name });
      stores.push(store);
      const t = store.get(name);
      const why = promptEmbedsProblem(key, t, textDim, textLength, `its tensor ${name}`);
      if (why !== null) throw new UsageError(`${cliName(key)}: ${file}: ${why}`);
      out[key] = t;
    }
    return out;
  } catch (e) {
    out.dispose();
    throw e;
  }
}
