/**
 * Datasets of preference rows, read lazily: `loadDataset` takes `datasets.load_dataset`'s arguments — a file, a
 * folder (a Hugging Face `datasets` folder or hub snapshot, a `save_to_disk` folder) or a hub dataset id in the
 * Hugging Face cache (locate.ts finds the splits' files), and a split spec (`train`, `train[:10%]`, `train+test`:
 * split_spec.ts) — and streams the rows from the files (file_rows.ts) each time the dataset is iterated. Extra
 * columns are kept; the trainer reads what it needs.
 *
 * @module
 */
import { countFileRows, type LocatedRow, rowsOf } from "./file_rows.ts";
import { type DataFilesOptions, openDataset } from "./locate.ts";
import { isWholeSplit, parseSplitSpec, sliceRows } from "./split_spec.ts";
import { DatasetError } from "./tokenize_row.ts";

export type { LocatedRow, Row } from "./file_rows.ts";
import type { Row } from "./file_rows.ts";

/** A sequence of rows that can be iterated (repeatedly) without holding the files' text in memory. */
export class Dataset {
  constructor(readonly name: string, private readonly source: () => AsyncIterable<LocatedRow>) {}

  /** A dataset from rows in memory. */
  static fromRows(rows: Row[], name = "rows"): Dataset {
    return new Dataset(name, async function* () {
      for (let i = 0; i < rows.length; i++) yield { row: rows[i], index: i, where: `${name} row ${i}` };
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<LocatedRow> {
    return this.source()[Symbol.asyncIterator]();
  }

  /** Every row in memory (small datasets, tests). */
  async toArray(): Promise<Row[]> {
    const out: Row[] = [];
    for await (const r of this) out.push(r.row);
    return out;
  }

  /** The number of rows (iterates once). */
  async count(): Promise<number> {
    let n = 0;
    for await (const _ of this) n++;
    return n;
  }
}

/** Which rows `loadDataset` reads: the split spec, subset, data_dir, data_files and, for hub ids, the cache. */
export interface LoadDatasetOptions extends DataFilesOptions {
  /**
   * load_dataset's `split` (default "train"): a split, a slice of one (`train[:100]`, `train[10%:20%]`,
   * `train[-5%:]`), or several joined by + (`train+test`); see split_spec.ts. A single file is the train split.
   */
  split?: string;
}

/** Rows [start, end) of one split's files (whole: every row, the files not counted). */
interface Piece {
  files: string[];
  /** Each file's row count, when the part is a slice. */
  counts: number[] | null;
  start: number;
  end: number;
}

/** The rows of one piece, in file order, reading no file wholly before the slice and none after it. */
async function* pieceRows(p: Piece): AsyncGenerator<LocatedRow> {
  let offset = 0;
  for (const [k, f] of p.files.entries()) {
    if (offset >= p.end) return;
    const n = p.counts?.[k];
    if (n !== undefined && offset + n <= p.start) {
      offset += n;
      continue;
    }
    for await (const r of rowsOf(f, 0)) {
      if (offset >= p.end) return;
      if (offset++ >= p.start) yield r;
    }
  }
}

/**
 * Loads a dataset lazily (rows stream from disk each time it is iterated): a file, a folder (a `datasets` folder,
 * a hub snapshot, a `save_to_disk` folder) or the id of a hub dataset in the Hugging Face cache, with
 * `load_dataset`'s `split` (a split spec, see split_spec.ts), `name`, `dataDir` and `dataFiles` (see locate.ts). A
 * slice counts its split's rows first (from the metadata of Parquet and Arrow files; JSON and JSONL are read once).
 */
export async function loadDataset(pathOrId: string, opts: LoadDatasetOptions = {}): Promise<Dataset> {
  const spec = opts.split ?? "train";
  const parts = parseSplitSpec(spec);
  const layout = await openDataset(pathOrId, opts);
  const sizes = new Map<string, number[]>();
  const pieces: Piece[] = [];
  for (const part of parts) {
    const files = await layout.files(part.split);
    if (files.length === 0) {
      throw new DatasetError(`${layout.label(part.split)}: no files for split "${part.split}"`);
    }
    for (const f of files) rowsOf(f, 0).return(undefined); // validates the extension early
    if (isWholeSplit(part)) {
      pieces.push({ files, counts: null, start: 0, end: Infinity });
      continue;
    }
    if (!sizes.has(part.split)) {
      const counts: number[] = [];
      for (const f of files) counts.push(await countFileRows(f));
      sizes.set(part.split, counts);
    }
    const counts = sizes.get(part.split)!;
    const { start, end } = sliceRows(part, counts.reduce((a, b) => a + b, 0), spec);
    pieces.push({ files, counts, start, end });
  }
  if (pieces.every((p) => p.counts !== null && p.end <= p.start)) {
    const rows = [...sizes].map(([s, c]) => `${s} has ${c.reduce((a, b) => a + b, 0)} rows`).join(", ");
    throw new DatasetError(
      `${
        layout.label(spec)
      }: split "${spec}" selects no rows (${rows}); a slice [from:to] keeps the rows from ` +
        `row from up to before row to`,
    );
  }
  const name = layout.label(parts.map((p) => p.text).join("+"));
  return new Dataset(name, async function* () {
    let index = 0;
    for (const p of pieces) for await (const r of pieceRows(p)) yield { ...r, index: index++ };
  });
}
