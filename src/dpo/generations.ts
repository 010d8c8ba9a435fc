/**
 * generate_during_eval: after each evaluation, greedy completions of the first eval prompts by the policy and by
 * the reference (a reference model, or the LoRA policy with its adapters disabled or the reference adapter on),
 * printed as a three-column table and appended to output_dir/generations.jsonl.
 */
import type { CausalLM } from "../models/causal_lm.ts";
import { generate } from "../models/generate.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { JsonlLog } from "../train/metrics_log.ts";
import { round } from "../train/log_entries.ts";
import { inReference, type LoraSetup } from "./lora_reference.ts";

/** Prompts and new tokens per evaluation. */
const GENERATION_PROMPTS = 3;
const GENERATION_TOKENS = 32;

export interface GenerationInput {
  model: CausalLM;
  refModel: CausalLM | null;
  /** The LoRA side of the run: its reference is the policy with adapters disabled or the reference adapter. */
  lora: LoraSetup | null;
  /** Whether the run has a reference at all (not reference_free). */
  hasReference: boolean;
  tokenizer: Tokenizer;
  /** The eval examples' prompt ids, in order. */
  prompts: number[][];
  step: number;
  epoch: number;
  print: (line: string) => void;
  log: JsonlLog;
}

/** Generates, prints and logs the samples of one evaluation. */
export async function generateSamples(x: GenerationInput): Promise<void> {
  const tok = x.tokenizer;
  const prompts = x.prompts.slice(0, GENERATION_PROMPTS);
  const longest = Math.max(...prompts.map((p) => p.length));
  const maxNewTokens = Math.min(GENERATION_TOKENS, x.model.config.maxPositionEmbeddings - longest);
  if (maxNewTokens < 1) return;
  const policy = await generate(x.model, tok, prompts, { maxNewTokens });
  const reference = x.refModel
    ? await generate(x.refModel, tok, prompts, { maxNewTokens })
    : x.lora && x.hasReference
    ? await inReference(x.model, x.lora.refAdapter, () => generate(x.model, tok, prompts, { maxNewTokens }))
    : null;
  const rows = prompts.map((p, i) => ({
    prompt: tok.decode(p, { skipSpecialTokens: true }),
    policy: policy.texts[i],
    reference: reference ? reference.texts[i] : null,
  }));
  x.print(`generations at step ${x.step} (greedy, ${maxNewTokens} new tokens at most):`);
  for (const line of textTable(rows, reference ? "" : " (no reference model)")) x.print(line);
  for (const r of rows) await x.log.append({ step: x.step, epoch: round(x.epoch), ...r });
}

/** A three-column text table of generations (cells escaped to one line and cut at 40 characters). */
function textTable(
  rows: { prompt: string; policy: string; reference: string | null }[],
  note: string,
): string[] {
  const header = ["prompt", "policy", `reference${note}`];
  const cells = rows.map((r) => [r.prompt, r.policy, r.reference ?? "-"].map(oneLine));
  const widths = header.map((h, j) => Math.max(h.length, ...cells.map((c) => c[j].length)));
  const line = (c: string[]) => `| ${c.map((x, j) => x.padEnd(widths[j])).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.map(line)];
}

function oneLine(s: string): string {
  const t = JSON.stringify(s).slice(1, -1);
  return t.length > 40 ? t.slice(0, 39) + "…" : t;
}
