/**
 * Implicit prompts, as TRL 1.13 finds them (`trl.data_utils.extract_prompt` and `maybe_extract_prompt`): a raw
 * Anthropic hh-rlhf row holds only `chosen` and `rejected`, each the whole conversation as one string; an
 * UltraFeedback-binarized row has a `prompt` string but answers that are conversations repeating it.
 *
 * extractPrompt: the prompt is the longest common prefix of chosen and rejected, in characters for strings (Unicode
 * code points, as Python indexes a str, not UTF-16 units) or in messages for conversations. Where the first
 * difference follows a space, the split moves back one so the space starts the answers. TRL's loop keeps its
 * quirks, reproduced here: when one answer is a prefix of the other (or both are equal) the split is one before
 * the shorter answer's end, so each answer keeps at least its last element; and when the very first elements
 * differ, the "element before" is the last one (Python's index −1), so a chosen string ending in a space splits
 * one before its end. An empty answer is an error (TRL fails there with an UnboundLocalError).
 *
 * maybeExtractPrompt: rows without both answers, and rows whose `prompt` is of the answers' kind (both strings, or
 * both conversations), are returned unchanged; otherwise the prompt is extracted from the answers (an existing
 * `prompt` of the other kind is replaced) and the row's other columns are kept.
 */
import { DatasetError } from "./tokenize_row.ts";

/** A chat message ({role, content}, and whatever else a dataset puts in it). */
export type ChatMessage = { role: string; content: unknown; [key: string]: unknown };

/** A string or a conversation: the kinds of prompt, chosen and rejected. */
export type PromptOrAnswer = string | ChatMessage[];

/** Whether `x` is a conversation as TRL's is_conversational decides it: a list whose first item has a role. */
export function isConversation(x: unknown): x is ChatMessage[] {
  if (!Array.isArray(x) || x.length === 0) return false;
  const m = x[0];
  return m !== null && typeof m === "object" && !Array.isArray(m) && "role" in m && "content" in m;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameValue((a as never)[k], (b as never)[k]));
}

/** TRL's extract_prompt: {prompt, chosen, rejected} from chosen and rejected that repeat the prompt. */
export function extractPrompt(
  row: { chosen: PromptOrAnswer; rejected: PromptOrAnswer },
  where = "row",
): { prompt: PromptOrAnswer; chosen: PromptOrAnswer; rejected: PromptOrAnswer } {
  const strings = typeof row.chosen === "string" && typeof row.rejected === "string";
  if (!strings && !(Array.isArray(row.chosen) && Array.isArray(row.rejected))) {
    throw new DatasetError(
      `${where}: "chosen" and "rejected" must both be strings or both be lists of {role, content} messages`,
    );
  }
  // code points for strings (Python's str indexing), messages for conversations
  const c: unknown[] = strings ? Array.from(row.chosen as string) : (row.chosen as unknown[]);
  const r: unknown[] = strings ? Array.from(row.rejected as string) : (row.rejected as unknown[]);
  const n = Math.min(c.length, r.length);
  if (n === 0) {
    throw new DatasetError(
      `${where}: cannot find the prompt: "${c.length === 0 ? "chosen" : "rejected"}" is empty ` +
        `(TRL's extract_prompt fails on this row too)`,
    );
  }
  let idx = 0;
  let differs = false;
  for (; idx < n; idx++) {
    if (!sameValue(c[idx], r[idx])) {
      differs = true;
      // Python's chosen[idx − 1]: the last element when idx is 0
      if (c.at(idx - 1) === " ") idx -= 1;
      break;
    }
  }
  if (!differs) idx = n - 1; // Python's loop variable keeps its last value
  // Python slices: a negative idx counts from the end, as Array.prototype.slice does
  const cut = (xs: unknown[], from: number, to?: number) => {
    const part = xs.slice(from, to);
    return strings ? part.join("") : (part as ChatMessage[]);
  };
  return { prompt: cut(c, 0, idx), chosen: cut(c, idx), rejected: cut(r, idx) };
}

/** Whether the row's `prompt` is of its answers' kind (both strings, or both conversations): TRL keeps it then. */
export function hasExplicitPrompt(row: Record<string, unknown>): boolean {
  const p = row.prompt;
  return p !== undefined && p !== null && isConversation(p) === isConversation(row.chosen);
}

/** TRL's maybe_extract_prompt (see the module comment); other columns of the row are kept. */
export function maybeExtractPrompt<T extends Record<string, unknown>>(row: T, where = "row"): T {
  if (!("chosen" in row) || !("rejected" in row) || hasExplicitPrompt(row)) return row;
  return {
    ...row,
    ...extractPrompt(row as unknown as { chosen: PromptOrAnswer; rejected: PromptOrAnswer }, where),
  };
}
