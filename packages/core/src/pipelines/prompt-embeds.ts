// Text-encoder states given by the caller (`promptEmbeds` / `negativePromptEmbeds`), as
// diffusers' WanPipeline takes `prompt_embeds`: for people with their own text encoder
// (or prompt weighting), and for parity tests that must feed two engines the same
// conditioning. When given, the text encoder does not run for that branch.
//
// Wan's own text states are [1, text_len, text_dim] with the rows past the prompt's
// tokens set to zero (diffusers' _get_t5_prompt_embeds cuts each sequence at its
// length and pads it with zeros to max_sequence_length, 512). A shorter tensor is
// padded here the same way, so the transformer always attends over text_len rows,
// as for a prompt the pipeline encoded itself. (diffusers passes a shorter
// prompt_embeds through unpadded; for bit-for-bit parity with it, give text_len rows.)
import { cast, concat, type Device, type DType, type Tensor, zeros } from "@tessera/native";
import { GenerateOptionError } from "./options.js";

export type EmbedsKey = "promptEmbeds" | "negativePromptEmbeds";

const FLOAT: readonly DType[] = ["f32", "bf16", "f16"];

function isTensorLike(x: unknown): x is Tensor {
  return typeof x === "object" && x !== null && "shape" in x && "dtype" in x && "dispose" in x;
}

/**
 * Why `value` cannot serve as text states for a transformer with `textDim` and a text
 * length of `textLength`, or null. Names the option and says what it must be.
 */
export function promptEmbedsProblem(
  key: EmbedsKey,
  value: unknown,
  textDim: number,
  textLength: number,
  /** How the message names the value (default: the option). */
  label: string = key,
): string | null {
  const want = `[seq, ${textDim}] or [1, seq, ${textDim}] with seq from 1 to ${textLength}`;
  if (!isTensorLike(value)) return `${label} must be a Tensor of text-encoder states ${want}`;
  if (value.disposed) return `${label} was disposed; give a live tensor`;
  if (!FLOAT.includes(value.dtype))
    return `${label} must be a float tensor (f32, bf16 or f16), got ${value.dtype}`;
  const s = value.shape;
  const batched = s.length === 3;
  if ((s.length !== 2 && !batched) || (batched && s[0] !== 1))
    return `${label} must be ${want}, got [${s.join(", ")}]${batched ? " (one prompt per run: batch 1)" : ""}`;
  const seq = s[s.length - 2] as number;
  const dim = s[s.length - 1] as number;
  if (dim !== textDim)
    return `${label} has ${dim} features per token but this model's transformer takes text_dim ${textDim} (the text encoder's d_model); got [${s.join(", ")}]`;
  if (seq < 1 || seq > textLength)
    return `${label} has ${seq} tokens; this model takes 1 to ${textLength} (its text length), got [${s.join(", ")}]`;
  return null;
}

/**
 * The given states as the pipeline's text states: [1, textLength, textDim] on `device`
 * in `dtype`, zero rows after the given ones. A new tensor the caller owns; the input
 * is left as it was. Check it with promptEmbedsProblem first.
 */
export async function padPromptEmbeds(
  embeds: Tensor,
  textLength: number,
  device: Device,
  dtype: DType,
): Promise<Tensor> {
  const s = embeds.shape;
  const seq = s[s.length - 2] as number;
  const dim = s[s.length - 1] as number;
  const owned: Tensor[] = [];
  try {
    let t = embeds.isContiguous ? embeds : keep(owned, embeds.contiguous());
    if (!t.device.equals(device)) t = keep(owned, await t.to(device));
    if (t.dtype !== dtype) t = keep(owned, cast(t, dtype));
    const rows = keep(owned, t.reshape([1, seq, dim]));
    if (seq === textLength) return cast(rows, dtype); // a copy the caller owns
    const pad = keep(owned, zeros([1, textLength - seq, dim], { device, dtype }));
    return concat([rows, pad], 1);
  } finally {
    for (const t of owned) t.dispose();
  }
}

function keep(owned: Tensor[], t: Tensor): Tensor {
  owned.push(t);
  return t;
}

/** Checks generate()'s promptEmbeds and negativePromptEmbeds against the model (GenerateOptionError naming the option). */
export function checkPromptEmbeds(
  o: { promptEmbeds?: unknown; negativePromptEmbeds?: unknown },
  textDim: number,
  textLength: number,
): void {
  for (const key of ["promptEmbeds", "negativePromptEmbeds"] as const) {
    const v = o[key];
    if (v === undefined || v === null) continue;
    const why = promptEmbedsProblem(key, v, textDim, textLength);
    if (why !== null) throw new GenerateOptionError(key, why);
  }
}
