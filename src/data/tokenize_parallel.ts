/**
 * Tokenizing a dataset once before training (`dataset_num_proc`): rows stream from the dataset in chunks, which go
 * round-robin to `numProc` Web Workers (each with its own copy of the tokenizer) and come back in order, so the
 * result is identical to tokenizing row by row. With `numProc` ≤ 1, or a tokenizer that cannot be rebuilt from its
 * files in a worker, rows are tokenized in this thread.
 */
import type { Dataset } from "./dataset.ts";
import {
  DatasetError,
  type RowTokenizer,
  type TokenizedRow,
  type TokenizeOptions,
  tokenizeRow,
} from "./tokenize_row.ts";
import { TOKENIZE_WORKER_URL } from "./tokenize_worker_url.ts";

type Json = Record<string, unknown>;

/** A tokenized row and where it came from. */
export interface TokenizedExample {
  row: TokenizedRow;
  where: string;
}

const CHUNK = 256;

function hasFiles(
  t: RowTokenizer,
): t is RowTokenizer & { files: { tokenizer: Json; config: Json; specialTokensMap: Json | null } } {
  const f = (t as { files?: { tokenizer?: unknown } }).files;
  return !!f && typeof f === "object" && !!f.tokenizer;
}

/** Tokenizes every row of `data` (in dataset order). */
export async function tokenizeDataset(
  data: Dataset,
  tokenizer: RowTokenizer,
  opts: TokenizeOptions & { maxLength: number; maxPromptLength: number },
  numProc = 1,
): Promise<TokenizedExample[]> {
  if (numProc <= 1 || !hasFiles(tokenizer) || typeof Worker === "undefined") {
    const out: TokenizedExample[] = [];
    for await (const r of data) {
      out.push({ row: tokenizeRow(r.row, tokenizer, opts, r.where), where: r.where });
    }
    return out;
  }
  const { warn: _warn, ...plainOpts } = opts;
  const workers = Array.from({ length: numProc }, () => {
    const w = new Worker(TOKENIZE_WORKER_URL.href, { type: "module" });
    w.postMessage({ kind: "init", files: tokenizer.files, opts: plainOpts });
    return w;
  });
  const pending = new Map<number, { resolve: (r: TokenizedRow[]) => void; reject: (e: Error) => void }>();
  for (const w of workers) {
    w.onmessage = (e: MessageEvent<{ id: number; rows?: TokenizedRow[]; error?: string }>) => {
      const p = pending.get(e.data.id);
      if (!p) return;
      pending.delete(e.data.id);
      if (e.data.error !== undefined) p.reject(new DatasetError(e.data.error));
      else p.resolve(e.data.rows!);
    };
    w.onerror = (e) => {
      e.preventDefault();
      for (const p of pending.values()) p.reject(new DatasetError(`tokenizer worker failed: ${e.message}`));
      pending.clear();
    };
  }
  const results: Promise<TokenizedExample[]>[] = [];
  try {
    let chunk: { row: Json; where: string }[] = [];
    let id = 0;
    const send = () => {
      const rows = chunk;
      chunk = [];
      const myId = id++;
      const w = workers[myId % workers.length];
      results.push(
        new Promise<TokenizedRow[]>((resolve, reject) => {
          pending.set(myId, { resolve, reject });
          w.postMessage({ kind: "chunk", id: myId, rows });
        }).then((out) => out.map((row, i) => ({ row, where: rows[i].where }))),
      );
    };
    for await (const r of data) {
      chunk.push({ row: r.row, where: r.where });
      if (chunk.length === CHUNK) send();
    }
    if (chunk.length) send();
    return (await Promise.all(results)).flat();
  } finally {
    for (const w of workers) w.terminate();
  }
}
