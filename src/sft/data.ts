/**
 * Supervised fine-tuning rows → token ids and labels.
 *
 * Row formats (TRL's SFT dataset types):
 * - conversational language modelling: `{ messages: [{role, content}, …] }`, rendered with the chat template.
 *   With `assistantOnlyLoss` the labels keep only the tokens of the assistant turns: each assistant message's
 *   span is the text between the render of the messages before it with the generation prompt and the render
 *   up to and including it (so the turn's closing token, e.g. `<|im_end|>`, is scored and the role header is not).
 * - prompt/completion: `{ prompt, completion }`, both strings or both message lists; with `completionOnlyLoss`
 *   (default) only the completion is scored.
 * - plain language modelling: `{ text }` (the column named by `datasetTextField`); every token is scored.
 *
 * The text is encoded one segment at a time (scored and unscored spans separately), so the label boundaries fall
 * exactly on the rendered boundaries. String rows get the tokenizer's BOS in front and its EOS at the end when
 * it has them (TRL appends EOS to non-conversational rows); a chat template supplies its own special tokens.
 * Sequences longer than `maxLength` are truncated at the end; a row left with nothing to score is an error.
 */
import { DatasetError } from "../data/tokenize_row.ts";
import type { Message } from "../tokenizer/tokenizer.ts";

/** What the SFT tokenization needs of a tokenizer (the webdpo Tokenizer provides it). */
export interface SFTTokenizer {
  encode(text: string): number[];
  bosTokenId: number | null;
  eosTokenId: number | null;
  applyChatTemplate(messages: Message[], opts?: { addGenerationPrompt?: boolean }): string;
}

export interface SFTTokenizeOptions {
  maxLength: number;
  assistantOnlyLoss: boolean;
  /** null = true. */
  completionOnlyLoss: boolean | null;
  datasetTextField: string;
  labelPadTokenId: number;
}

/** One tokenized row: `labels[t]` is `inputIds[t]` where the token is scored, else `labelPadTokenId`. */
export interface SFTExample {
  inputIds: number[];
  labels: number[];
}

/** A right-padded batch [B, T] (row-major). */
export interface SFTBatch {
  B: number;
  T: number;
  inputIds: Int32Array;
  attentionMask: Int32Array;
  labels: Int32Array;
  /** The number of scored labels (a row's first position is never scored: nothing predicts it). */
  tokens: number;
}

/** A span of rendered text and whether its tokens are scored. */
interface Segment {
  text: string;
  scored: boolean;
}

function isMessages(v: unknown): v is Message[] {
  return Array.isArray(v) && v.length > 0 &&
    v.every((m) => m && typeof m === "object" && typeof m.role === "string" && typeof m.content === "string");
}

/** Splits a rendered conversation into unscored and scored (assistant) segments. */
function conversationSegments(
  messages: Message[],
  tok: SFTTokenizer,
  assistantOnly: boolean,
  where: string,
): Segment[] {
  const full = tok.applyChatTemplate(messages);
  if (!assistantOnly) return [{ text: full, scored: true }];
  const segments: Segment[] = [];
  let pos = 0;
  messages.forEach((m, i) => {
    if (m.role !== "assistant") return;
    const before = tok.applyChatTemplate(messages.slice(0, i), { addGenerationPrompt: true });
    const upto = tok.applyChatTemplate(messages.slice(0, i + 1));
    if (!upto.startsWith(before) || !full.startsWith(upto) || before.length < pos) {
      throw new DatasetError(
        `${where}: the chat template does not render message ${i} (assistant) as an extension of the ` +
          `messages before it, so its tokens cannot be located; set assistantOnlyLoss: false to score everything`,
      );
    }
    segments.push({ text: full.slice(pos, before.length), scored: false });
    segments.push({ text: full.slice(before.length, upto.length), scored: true });
    pos = upto.length;
  });
  if (segments.length === 0) {
    throw new DatasetError(`${where}: the conversation has no assistant message to train on`);
  }
  segments.push({ text: full.slice(pos), scored: false });
  return segments;
}

/** The segments of a row in any of the supported formats. */
function rowSegments(row: Record<string, unknown>, tok: SFTTokenizer, o: SFTTokenizeOptions, where: string) {
  const completionOnly = o.completionOnlyLoss ?? true;
  if ("messages" in row) {
    if (!isMessages(row.messages)) {
      throw new DatasetError(`${where}: "messages" must be a non-empty list of {role, content} messages`);
    }
    return { segments: conversationSegments(row.messages, tok, o.assistantOnlyLoss, where), plain: false };
  }
  if ("completion" in row || "prompt" in row) {
    const { prompt, completion } = row;
    if (typeof prompt === "string" && typeof completion === "string") {
      if (completion.length === 0) throw new DatasetError(`${where}: the "completion" is empty`);
      return {
        segments: [{ text: prompt, scored: !completionOnly }, { text: completion, scored: true }],
        plain: true,
      };
    }
    if (isMessages(prompt) && isMessages(completion)) {
      const p = tok.applyChatTemplate(prompt, { addGenerationPrompt: true });
      const full = tok.applyChatTemplate([...prompt, ...completion]);
      if (!full.startsWith(p)) {
        throw new DatasetError(
          `${where}: the chat template renders prompt + completion without the rendered prompt as its prefix`,
        );
      }
      return {
        segments: [{ text: p, scored: !completionOnly }, { text: full.slice(p.length), scored: true }],
        plain: false,
      };
    }
    throw new DatasetError(
      `${where}: "prompt" and "completion" must both be strings or both be lists of {role, content} messages`,
    );
  }
  const text = row[o.datasetTextField];
  if (typeof text === "string") {
    if (text.length === 0) throw new DatasetError(`${where}: the "${o.datasetTextField}" column is empty`);
    return { segments: [{ text, scored: true }], plain: true };
  }
  throw new DatasetError(
    `${where}: an SFT row needs "messages", "prompt" and "completion", or "${o.datasetTextField}" ` +
      `(found columns: ${Object.keys(row).join(", ") || "none"})`,
  );
}

/** Tokenizes one SFT row. `where` names the row in errors. */
export function tokenizeSftRow(
  row: Record<string, unknown>,
  tok: SFTTokenizer,
  opts: SFTTokenizeOptions,
  where = "row 0",
): SFTExample {
  if (!row || typeof row !== "object" || Array.isArray(row)) {
    throw new DatasetError(`${where}: a row must be an object`);
  }
  const { segments, plain } = rowSegments(row, tok, opts, where);
  let inputIds: number[] = [];
  let labels: number[] = [];
  for (const s of segments) {
    if (s.text.length === 0) continue;
    const ids = tok.encode(s.text);
    inputIds.push(...ids);
    labels.push(...(s.scored ? ids : ids.map(() => opts.labelPadTokenId)));
  }
  if (plain) {
    const bos = tok.bosTokenId, eos = tok.eosTokenId;
    if (bos !== null && inputIds[0] !== bos) {
      inputIds = [bos, ...inputIds];
      labels = [opts.labelPadTokenId, ...labels];
    }
    if (eos !== null && inputIds[inputIds.length - 1] !== eos) {
      inputIds.push(eos);
      labels.push(eos);
    }
  }
  if (inputIds.length > opts.maxLength) {
    inputIds = inputIds.slice(0, opts.maxLength);
    labels = labels.slice(0, opts.maxLength);
  }
  // the first position is never scored (nothing predicts it)
  if (!labels.slice(1).some((l) => l !== opts.labelPadTokenId)) {
    throw new DatasetError(
      `${where}: no token is left to train on${
        inputIds.length === opts.maxLength ? ` after truncation to maxLength ${opts.maxLength}` : ""
      }`,
    );
  }
  return { inputIds, labels };
}

/** Right-pads examples into one batch. */
export function collateSft(
  examples: SFTExample[],
  { padTokenId, labelPadTokenId = -100 }: { padTokenId: number; labelPadTokenId?: number },
): SFTBatch {
  const B = examples.length;
  if (B === 0) throw new RangeError("collateSft: no examples");
  const T = Math.max(...examples.map((e) => e.inputIds.length));
  const inputIds = new Int32Array(B * T).fill(padTokenId);
  const attentionMask = new Int32Array(B * T);
  const labels = new Int32Array(B * T).fill(labelPadTokenId);
  let tokens = 0;
  examples.forEach((e, b) => {
    inputIds.set(e.inputIds, b * T);
    attentionMask.fill(1, b * T, b * T + e.inputIds.length);
    labels.set(e.labels, b * T);
    for (let t = 1; t < e.labels.length; t++) if (e.labels[t] !== labelPadTokenId) tokens++;
  });
  return { B, T, inputIds, attentionMask, labels, tokens };
}
