/**
 * A Web Worker that tokenizes dataset rows (see tokenize_parallel.ts). It builds its own Tokenizer from the
 * tokenizer files it is sent once, then answers chunk messages with tokenized rows or the first error.
 */
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import { type TokenizedRow, type TokenizeOptions, tokenizeRow } from "./tokenize_row.ts";

type Json = Record<string, unknown>;

interface InitMessage {
  kind: "init";
  files: { tokenizer: Json; config: Json; specialTokensMap: Json | null };
  opts: TokenizeOptions & { maxLength: number; maxPromptLength: number };
}
interface ChunkMessage {
  kind: "chunk";
  id: number;
  rows: { row: Json; where: string }[];
}

let tokenizer: Tokenizer | null = null;
let opts: InitMessage["opts"] | null = null;

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<InitMessage | ChunkMessage>) => void) | null;
  postMessage(m: unknown): void;
};

scope.onmessage = (e) => {
  const m = e.data;
  if (m.kind === "init") {
    tokenizer = new Tokenizer(m.files.tokenizer, m.files.config, m.files.specialTokensMap);
    opts = { ...m.opts, warn: () => {} };
    return;
  }
  try {
    const out: TokenizedRow[] = m.rows.map((r) => tokenizeRow(r.row, tokenizer!, opts!, r.where));
    scope.postMessage({ id: m.id, rows: out });
  } catch (err) {
    scope.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) });
  }
};
