/**
 * tokenize_row, as SPEC.md "Tokenizing a row" fixes it: prompt/answer split with at most one token merged across
 * the boundary, BOS/EOS rules, prompt-first truncation (keep_end / keep_start), labels with the prompt masked.
 * Conversational rows (lists of {role, content}) are rendered with the chat template first; rows with only
 * chosen/rejected conversations get their prompt as the longest common message prefix.
 */
import { WebDPOError } from "../gpu/errors.ts";
import { sink } from "../io/platform.ts";
import type { Message } from "../tokenizer/tokenizer.ts";
import { maybeExtractPrompt } from "./extract_prompt.ts";

/** A malformed dataset row. The message names the file (when known), the row and the problem. */
export class DatasetError extends WebDPOError {}

/** What tokenize_row needs of a tokenizer (the webdpo Tokenizer provides it). */
export interface RowTokenizer {
  encode(text: string): number[];
  bosTokenId: number | null;
  eosTokenId: number | null;
  applyChatTemplate(messages: Message[], opts?: { addGenerationPrompt?: boolean }): string;
}

export interface TokenizeOptions {
  /** Default 512 (a warning when unset). */
  maxLength?: number | null;
  /** Default 128 (a warning when unset). */
  maxPromptLength?: number | null;
  truncationMode?: "keep_end" | "keep_start";
  labelPadTokenId?: number;
  /** Where warnings go (default the platform's sink: console.warn). */
  warn?: (message: string) => void;
}

export interface TokenizedRow {
  prompt_input_ids: number[];
  chosen_input_ids: number[];
  chosen_attention_mask: number[];
  chosen_labels: number[];
  rejected_input_ids: number[];
  rejected_attention_mask: number[];
  rejected_labels: number[];
}

/** A row's text after chat-template rendering. */
export interface RenderedRow {
  prompt: string;
  chosen: string;
  rejected: string;
}

type Field = string | Message[];

function isMessages(v: unknown): v is Message[] {
  return Array.isArray(v) &&
    v.every((m) => m && typeof m === "object" && typeof m.role === "string" && typeof m.content === "string");
}

/** Which part of a would-be conversation `field` is wrong, in words ("rejected"[1] has content null, …). */
function whatIsWrong(field: string, v: unknown, other: unknown): string {
  if (typeof v === "string") {
    return `"${field}" is a string, the other answer ${Array.isArray(other) ? "a list" : "not"}`;
  }
  if (!Array.isArray(v)) return `"${field}" is ${v === null ? "null" : typeof v}`;
  const i = v.findIndex((m) => !(m && typeof m === "object" && typeof m.role === "string"));
  if (i >= 0) return `"${field}"[${i}] has no string "role"`;
  const j = v.findIndex((m) => typeof m.content !== "string");
  if (j < 0) return `"${field}" is not a list of messages`;
  return `"${field}"[${j}] has content ${v[j].content === null ? "null" : typeof v[j].content}, not a string`;
}

/** Resolves the defaults of max_length / max_prompt_length, warning once per unset value. */
export function resolveLengths(opts: TokenizeOptions): { maxLength: number; maxPromptLength: number } {
  const warn = opts.warn ?? ((m: string) => sink().warn(`webdpo: ${m}`));
  let maxLength = opts.maxLength ?? null;
  let maxPromptLength = opts.maxPromptLength ?? null;
  if (maxLength === null) {
    warn("max_length not set: using 512");
    maxLength = 512;
  }
  if (maxPromptLength === null) {
    warn("max_prompt_length not set: using 128");
    maxPromptLength = 128;
  }
  return { maxLength, maxPromptLength };
}

/** Renders a conversational row to prompt/chosen/rejected strings (standard rows pass through). */
export function renderRow(
  row: Record<string, unknown>,
  tok: RowTokenizer,
  where: string,
): RenderedRow {
  for (const k of ["chosen", "rejected"]) {
    if (row[k] === undefined || row[k] === null) {
      throw new DatasetError(`${where}: the "${k}" column is missing`);
    }
  }
  // implicit prompts (raw hh-rlhf, UltraFeedback's string prompt beside conversations), as TRL finds them
  const { prompt, chosen, rejected } = maybeExtractPrompt(row, where) as {
    prompt?: unknown;
    chosen?: unknown;
    rejected?: unknown;
  };
  if (typeof chosen === "string" && typeof rejected === "string") {
    if (typeof prompt !== "string") {
      throw new DatasetError(
        `${where}: "prompt" must be a string like "chosen" and "rejected" (got ${
          prompt === undefined ? "no prompt column" : typeof prompt
        })`,
      );
    }
    return { prompt, chosen, rejected };
  }
  if (!isMessages(chosen) || !isMessages(rejected)) {
    const [bad, other] = isMessages(chosen) ? ["rejected", rejected] : ["chosen", chosen];
    throw new DatasetError(
      `${where}: "chosen" and "rejected" must both be strings or both be lists of {role, content} messages ` +
        `(${whatIsWrong(bad, bad === "chosen" ? chosen : rejected, other)})`,
    );
  }
  if (!isMessages(prompt)) {
    throw new DatasetError(
      `${where}: "prompt" must be a list of {role, content} messages in a conversational row ` +
        `(${whatIsWrong("prompt", prompt, null)})`,
    );
  }
  const promptMsgs = prompt;
  for (const [name, answer] of [["chosen", chosen], ["rejected", rejected]] as const) {
    if (answer.length === 0) {
      throw new DatasetError(`${where}: the "${name}" answer is empty (no messages after the prompt)`);
    }
  }
  const p = tok.applyChatTemplate(promptMsgs, { addGenerationPrompt: true });
  const cont = (answer: Message[], name: string) => {
    const full = tok.applyChatTemplate([...promptMsgs, ...answer]);
    if (!full.startsWith(p)) {
      throw new DatasetError(
        `${where}: the chat template renders prompt + ${name} without the rendered prompt as its prefix`,
      );
    }
    return full.slice(p.length);
  };
  return { prompt: p, chosen: cont(chosen, "chosen"), rejected: cont(rejected, "rejected") };
}

/** Splits enc(prompt + answer) into prompt part and answer part (SPEC step 1). */
function split(
  p: number[],
  full: number[],
  name: string,
  where: string,
): { prompt: number[]; answer: number[] } {
  if (full.length < p.length) {
    throw new DatasetError(
      `${where}: the ${name} answer merges into the prompt: enc(prompt + ${name}) is shorter than enc(prompt)`,
    );
  }
  let k = p.length;
  let diffs = 0;
  for (let i = 0; i < k; i++) if (full[i] !== p[i]) diffs++;
  if (diffs > 0) {
    if (diffs > 1 || full[k - 1] === p[k - 1]) {
      throw new DatasetError(
        `${where}: enc(prompt + ${name}) differs from enc(prompt) in ${diffs} prompt tokens ` +
          `(more than one token merged across the boundary)`,
      );
    }
    k -= 1;
  }
  return { prompt: full.slice(0, k), answer: full.slice(k) };
}

function truncatePrompt(
  prompt: number[],
  maxPromptLength: number,
  mode: string,
  bos: number | null,
): number[] {
  if (mode === "keep_start") return prompt.slice(0, maxPromptLength);
  if (maxPromptLength <= 0) return [];
  if (bos !== null && prompt[0] === bos) {
    // a leading BOS stays first, followed by the last max_prompt_length − 1 tokens
    return maxPromptLength === 1 ? [bos] : [bos, ...prompt.slice(1).slice(-(maxPromptLength - 1))];
  }
  return prompt.slice(-maxPromptLength);
}

/**
 * Tokenizes one row (standard or conversational). `where` ("file line N") names the row in errors, those of the
 * tokenizer included (a chat template that raises, an encoder that fails), which say nothing of the row.
 */
export function tokenizeRow(
  row: Record<string, unknown>,
  tok: RowTokenizer,
  opts: TokenizeOptions & { maxLength: number; maxPromptLength: number },
  where = "row 0",
): TokenizedRow {
  try {
    return tokenizeNamedRow(row, tok, opts, where);
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    throw Object.assign(new DatasetError(`${where}: ${e instanceof Error ? e.message : e}`), { cause: e });
  }
}

function tokenizeNamedRow(
  row: Record<string, unknown>,
  tok: RowTokenizer,
  opts: TokenizeOptions & { maxLength: number; maxPromptLength: number },
  where: string,
): TokenizedRow {
  const mode = opts.truncationMode ?? "keep_end";
  if (mode !== "keep_end" && mode !== "keep_start") {
    throw new DatasetError(`truncation_mode must be "keep_end" or "keep_start", got "${mode}"`);
  }
  const labelPad = opts.labelPadTokenId ?? -100;
  const text = renderRow(row, tok, where);
  for (const k of ["chosen", "rejected"] as const) {
    if (text[k].length === 0) throw new DatasetError(`${where}: the "${k}" answer is empty`);
  }
  const p = tok.encode(text.prompt);
  const sides = (["chosen", "rejected"] as const).map((name) => {
    const s = split(p, tok.encode(text.prompt + text[name]), name, where);
    let prompt = s.prompt;
    let answer = s.answer;
    const bos = tok.bosTokenId;
    if (bos !== null && prompt[0] !== bos) prompt = [bos, ...prompt];
    const eos = tok.eosTokenId;
    if (eos !== null && answer[answer.length - 1] !== eos) answer = [...answer, eos];
    return { prompt, answer };
  });
  const L = Math.max(sides[0].answer.length, sides[1].answer.length);
  for (const s of sides) {
    if (s.prompt.length + L > opts.maxLength) {
      s.prompt = truncatePrompt(s.prompt, opts.maxPromptLength, mode, tok.bosTokenId);
    }
  }
  for (const s of sides) {
    if (s.prompt.length + L > opts.maxLength) {
      s.answer = s.answer.slice(0, opts.maxLength - opts.maxPromptLength);
    }
  }
  const [c, r] = sides;
  const mk = (s: { prompt: number[]; answer: number[] }) => ({
    ids: [...s.prompt, ...s.answer],
    mask: new Array(s.prompt.length + s.answer.length).fill(1),
    labels: [...new Array(s.prompt.length).fill(labelPad), ...s.answer],
  });
  const cc = mk(c), rr = mk(r);
  return {
    prompt_input_ids: c.prompt,
    chosen_input_ids: cc.ids,
    chosen_attention_mask: cc.mask,
    chosen_labels: cc.labels,
    rejected_input_ids: rr.ids,
    rejected_attention_mask: rr.mask,
    rejected_labels: rr.labels,
  };
}

/** The [chosen; rejected] batch of SPEC "Batches and log-probs", right-padded. */
export interface PairBatch {
  /** Pairs in the batch. */
  B: number;
  /** Padded length. */
  T: number;
  /** [2B, T] row-major: rows 0..B-1 chosen, B..2B-1 rejected. */
  inputIds: Int32Array;
  attentionMask: Int32Array;
  labels: Int32Array;
}

/** Right-pads tokenized rows into one [chosen; rejected] batch. */
export function collate(
  rows: TokenizedRow[],
  { padTokenId, labelPadTokenId = -100 }: { padTokenId: number; labelPadTokenId?: number },
): PairBatch {
  const B = rows.length;
  if (B === 0) throw new RangeError("collate: no rows");
  const seqs = [...rows.map((r) => [r.chosen_input_ids, r.chosen_attention_mask, r.chosen_labels])];
  seqs.push(...rows.map((r) => [r.rejected_input_ids, r.rejected_attention_mask, r.rejected_labels]));
  const T = Math.max(...seqs.map((s) => s[0].length));
  const inputIds = new Int32Array(2 * B * T).fill(padTokenId);
  const attentionMask = new Int32Array(2 * B * T);
  const labels = new Int32Array(2 * B * T).fill(labelPadTokenId);
  seqs.forEach(([ids, mask, lab], i) => {
    inputIds.set(ids, i * T);
    attentionMask.set(mask, i * T);
    labels.set(lab, i * T);
  });
  return { B, T, inputIds, attentionMask, labels };
}
