/**
 * A look at a preference dataset before training (`webdpo data`): its splits' sizes, its format, the token lengths of
 * prompts and answers under the model's tokenizer, and what max_length / max_prompt_length would cut, whole
 * answers included (truncation that silently eats answers is a common surprise with TRL).
 */
import type { Dataset } from "./dataset.ts";
import { hasExplicitPrompt, isConversation } from "./extract_prompt.ts";
import type { SplitSize } from "./split_sizes.ts";
import { parseSplitSpec } from "./split_spec.ts";
import { type RowTokenizer, tokenizeRow } from "./tokenize_row.ts";

/** Percentiles of a length distribution (tokens). */
export interface LengthStats {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface DatasetReport {
  rows: number;
  /** "standard" (strings) or "conversational" (lists of messages), from the first row. */
  format: "standard" | "conversational";
  /** "explicit": a prompt column of the answers' kind; "implicit": the prompt is extracted from the answers. */
  prompt: "explicit" | "implicit";
  /** Untruncated token lengths (BOS in the prompt, EOS in the answers, as tokenize_row counts them). */
  lengths: { prompt: LengthStats; chosen: LengthStats; rejected: LengthStats };
  /** Rows whose prompt max_prompt_length / max_length would shorten. */
  promptTruncated: number;
  /** Rows whose chosen or rejected answer max_length would shorten. */
  answerTruncated: number;
  /** Rows where an answer would keep no scored token at all. */
  answerLost: number;
}

function stats(xs: number[]): LengthStats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] : 0;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s.length ? s[s.length - 1] : 0 };
}

/** Reads every row of `ds` once and reports on it (see DatasetReport). */
export async function inspectDataset(
  ds: Dataset,
  tok: RowTokenizer,
  opts: { maxLength: number; maxPromptLength: number; labelPadTokenId?: number },
): Promise<DatasetReport> {
  const pad = opts.labelPadTokenId ?? -100;
  const len = { prompt: [] as number[], chosen: [] as number[], rejected: [] as number[] };
  let format: DatasetReport["format"] = "standard";
  let prompt: DatasetReport["prompt"] = "explicit";
  let promptTruncated = 0, answerTruncated = 0, answerLost = 0;
  let rows = 0;
  const huge = {
    maxLength: Number.MAX_SAFE_INTEGER,
    maxPromptLength: Number.MAX_SAFE_INTEGER / 2,
    labelPadTokenId: pad,
    warn: () => {},
  };
  for await (const r of ds) {
    if (rows === 0) {
      format = isConversation(r.row.chosen) ? "conversational" : "standard";
      prompt = hasExplicitPrompt(r.row) ? "explicit" : "implicit";
    }
    rows++;
    const full = tokenizeRow(r.row, tok, huge, r.where);
    const cut = tokenizeRow(r.row, tok, { ...opts, warn: () => {} }, r.where);
    const promptLen = full.prompt_input_ids.length;
    len.prompt.push(promptLen);
    const answer = (t: typeof full, k: "chosen" | "rejected") =>
      t[`${k}_labels`].filter((l) => l !== pad).length;
    let shortened = false, lost = false;
    for (const k of ["chosen", "rejected"] as const) {
      const a = answer(full, k);
      len[k].push(a);
      const kept = answer(cut, k);
      if (kept < a) shortened = true;
      if (kept === 0) lost = true;
    }
    if (cut.prompt_input_ids.length < promptLen) promptTruncated++;
    if (shortened) answerTruncated++;
    if (lost) answerLost++;
  }
  return {
    rows,
    format,
    prompt,
    lengths: { prompt: stats(len.prompt), chosen: stats(len.chosen), rejected: stats(len.rejected) },
    promptTruncated,
    answerTruncated,
    answerLost,
  };
}

/** Width of the label column of webdpo data's tables (the header's label included). */
const LABEL = 16;
/** Width of each number column. */
const NUM = 7;

/** One table line: the label, then each cell right-aligned in its column. */
const tableLine = (label: string, cells: readonly (string | number)[], width = LABEL) =>
  label.padEnd(width) + cells.map((c) => String(c).padStart(NUM)).join("");

/**
 * The rows-per-split table: each split's rows and files, marked with the split specs (`specs`) that read it, a split
 * that cannot be read with its problem.
 */
export function formatSplitSizes(sizes: readonly SplitSize[], specs: readonly string[]): string {
  const readBy = (split: string) =>
    specs.filter((spec) => parseSplitSpec(spec).some((p) => p.split === split)).join(", ");
  const width = Math.max(LABEL, ...sizes.map((s) => s.split.length + 3));
  return [
    tableLine("rows per split", ["rows", "files"], width),
    ...sizes.map((s) =>
      "problem" in s
        ? `  ${s.split.padEnd(width - 2)} unreadable: ${s.problem}`
        : tableLine(`  ${s.split}`, [s.rows, s.files], width) +
          (readBy(s.split) ? `  ← ${readBy(s.split)}` : "")
    ),
  ].join("\n");
}

/** The report as the lines `webdpo data` prints. */
export function formatDatasetReport(
  name: string,
  r: DatasetReport,
  opts: { maxLength: number; maxPromptLength: number },
): string {
  const pct = (n: number) => r.rows ? `${(100 * n / r.rows).toFixed(1)}%` : "0%";
  const row = (k: string, s: LengthStats) => tableLine(`  ${k}`, [s.p50, s.p90, s.p99, s.max]);
  return [
    `${name}: ${r.rows} rows, ${r.format}, ${r.prompt} prompt`,
    tableLine("token lengths", ["p50", "p90", "p99", "max"]),
    row("prompt", r.lengths.prompt),
    row("chosen", r.lengths.chosen),
    row("rejected", r.lengths.rejected),
    `with max_length ${opts.maxLength}, max_prompt_length ${opts.maxPromptLength}:`,
    `  prompts shortened        ${r.promptTruncated} (${pct(r.promptTruncated)})`,
    `  answers shortened        ${r.answerTruncated} (${pct(r.answerTruncated)})`,
    `  answers lost entirely    ${r.answerLost} (${pct(r.answerLost)})` +
    (r.answerLost ? "  ← these rows train on nothing: raise max_length or lower max_prompt_length" : ""),
  ].join("\n");
}
