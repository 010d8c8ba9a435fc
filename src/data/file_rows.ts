/**
 * The rows of one data file, streamed: JSON (an array of rows), JSONL (one row per line: a 1 GB file is never one
 * string), both also gzipped (.json.gz, .jsonl.gz: gunzipped while streamed), Parquet (hyparquet, by row group, the
 * file's own metadata and page headers checked first) and Arrow IPC streams (what `datasets.save_to_disk` writes,
 * read by apache-arrow record batch by record batch behind arrow_checks.ts). Each row carries "file line/row N" for
 * errors. `countFileRows` counts a file's rows, from the metadata where the format has it.
 *
 * @module
 */
import { RecordBatchReader } from "apache-arrow";
import { type FileMetaData, parquetMetadataAsync, parquetReadObjects, parquetSchema } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { files } from "../io/platform.ts";
import type { RandomAccessFile } from "../io/types.ts";
import { checkArrowBatch, checkedArrowStream } from "./arrow_checks.ts";
import { pageProblem } from "./parquet_pages.ts";
import { DatasetError } from "./tokenize_row.ts";

export type Row = Record<string, unknown>;

/** A row with where it came from, for error messages. */
export interface LocatedRow {
  row: Row;
  /** 0-based row number within the dataset. */
  index: number;
  /** "file row N" (N 0-based within the file; line numbers for JSONL are N + 1). */
  where: string;
}

const isGzip = (path: string) => path.toLowerCase().endsWith(".gz");

/** A data file for range reads; a file that is missing or unreadable is a DatasetError naming it. */
async function openFile(path: string): Promise<RandomAccessFile> {
  try {
    return await files().open(path);
  } catch (e) {
    throw new DatasetError(`${path}: cannot open (${e instanceof Error ? e.message : e})`);
  }
}

/** A data file's bytes as a stream; a file that is missing or unreadable is a DatasetError naming it. */
async function openStream(path: string): Promise<ReadableStream<Uint8Array>> {
  try {
    return await files().stream(path);
  } catch (e) {
    throw new DatasetError(`${path}: cannot open (${e instanceof Error ? e.message : e})`);
  }
}

/** The file's bytes as a stream, gunzipped on the way when the name ends in .gz (hh-rlhf ships train.jsonl.gz). */
async function openBytes(path: string): Promise<ReadableStream<Uint8Array>> {
  const stream = await openStream(path);
  if (!isGzip(path)) return stream;
  return stream.pipeThrough(
    new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
  );
}

/** A whole (possibly gzipped) text file. */
async function readText(path: string): Promise<string> {
  return await new Response(await openBytes(path)).text();
}

/** For a read error of a gzipped file (not valid gzip): a DatasetError naming the file; else null. */
function gzipError(path: string, e: unknown): DatasetError | null {
  if (!isGzip(path)) return null;
  return new DatasetError(`${path}: not a readable gzip file (${e instanceof Error ? e.message : e})`);
}

async function* jsonlRows(path: string, start: number): AsyncGenerator<LocatedRow> {
  // (the cast: the DOM library types TextDecoderStream's input as BufferSource, Deno's as Uint8Array)
  const decoder = new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>;
  const lines = (await openBytes(path)).pipeThrough(decoder).pipeThrough(lineSplitter());
  const reader = lines.getReader();
  let line = 0;
  let index = start;
  for (;;) {
    let next: ReadableStreamReadResult<string>;
    try {
      next = await reader.read();
    } catch (e) {
      throw gzipError(path, e) ?? e;
    }
    if (next.done) break;
    const text = next.value;
    line++;
    if (text.trim() === "") continue;
    let row: unknown;
    try {
      row = JSON.parse(text);
    } catch (e) {
      throw new DatasetError(`${path} line ${line}: not valid JSON (${e instanceof Error ? e.message : e})`);
    }
    if (!row || typeof row !== "object" || Array.isArray(row)) {
      throw new DatasetError(`${path} line ${line}: a row must be a JSON object`);
    }
    yield { row: row as Row, index: index++, where: `${path} line ${line}` };
  }
}

function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, ctl) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const p of parts) ctl.enqueue(p.endsWith("\r") ? p.slice(0, -1) : p);
    },
    flush(ctl) {
      if (rest) ctl.enqueue(rest);
    },
  });
}

async function* jsonRows(path: string, start: number): AsyncGenerator<LocatedRow> {
  let data: unknown;
  let text: string;
  try {
    text = await readText(path);
  } catch (e) {
    throw gzipError(path, e) ?? e;
  }
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new DatasetError(`${path}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  // {"train": [...]} style files are accepted too, through the caller's split
  if (!Array.isArray(data)) {
    throw new DatasetError(`${path}: a .json dataset must be an array of row objects`);
  }
  for (let i = 0; i < data.length; i++) {
    const row = data[i];
    if (!row || typeof row !== "object" || Array.isArray(row)) {
      throw new DatasetError(`${path} row ${i}: a row must be a JSON object`);
    }
    yield { row: row as Row, index: start + i, where: `${path} row ${i}` };
  }
}

/** A column chunk's bytes in a Parquet file, and what to call it in errors. */
interface ColumnChunkRange {
  start: number;
  end: number;
  what: string;
}

/** The byte ranges of every column chunk (as hyparquet computes them: from the dictionary page if there is one). */
function columnChunkRanges(meta: FileMetaData): ColumnChunkRange[] {
  return meta.row_groups.flatMap((group, g) =>
    group.columns.flatMap((chunk) => {
      const m = chunk.meta_data;
      if (!m) return [];
      const start = Number(m.dictionary_page_offset || m.data_page_offset);
      const what = `row group ${g}, column ${m.path_in_schema.join(".")}`;
      return [{ start, end: start + Number(m.total_compressed_size), what }];
    })
  );
}

/**
 * A Parquet file as hyparquet's AsyncBuffer. Reads are serialised (hyparquet asks for column chunks
 * concurrently), a range outside the file is refused before anything is
 * allocated for it (the ranges come from the file's own metadata), the page headers of each column chunk a read
 * covers are checked before hyparquet decodes them (see parquet_pages.ts), and `close` waits for the reads in
 * flight.
 */
async function fileBuffer(path: string) {
  const file = await openFile(path);
  const byteLength = file.size;
  let pending: Promise<unknown> = Promise.resolve();
  let chunks: ColumnChunkRange[] = [];
  const readRange = async (start: number, stop: number): Promise<ArrayBuffer> => {
    if (
      !(Number.isSafeInteger(start) && Number.isSafeInteger(stop) && 0 <= start && start <= stop &&
        stop <= byteLength)
    ) {
      throw new DatasetError(
        `${path}: corrupt Parquet file: bytes [${start}, ${stop}) are outside the ${byteLength}-byte file`,
      );
    }
    let out: Uint8Array;
    try {
      out = await file.read(start, stop - start);
    } catch (e) {
      if (e instanceof RangeError) throw new DatasetError(`${path}: truncated Parquet file`);
      throw e;
    }
    if (out.byteOffset !== 0 || out.byteLength !== out.buffer.byteLength) out = out.slice();
    for (const c of chunks) {
      if (c.start < start || c.end > stop) continue;
      const problem = pageProblem(out.subarray(c.start - start, c.end - start));
      if (problem !== null) throw new DatasetError(`${path}: corrupt Parquet file (${c.what}): ${problem}`);
    }
    return out.buffer as ArrayBuffer;
  };
  return {
    buffer: {
      byteLength,
      slice(start: number, end?: number): Promise<ArrayBuffer> {
        const read = pending.then(() => readRange(start, end ?? byteLength));
        pending = read.catch(() => {});
        return read;
      },
    },
    /** Checks the pages of these column chunks whenever a read covers one. */
    checkPages(meta: FileMetaData): void {
      chunks = columnChunkRanges(meta);
    },
    async close(): Promise<void> {
      await pending;
      await file.close();
    },
  };
}

/**
 * Throws unless every column chunk names a column of the schema. hyparquet finds out while it starts the reads of
 * a row group's columns, and the reads it started before throwing then fail with nobody listening (an unhandled
 * rejection, which ends the process).
 */
function checkColumnPaths(meta: FileMetaData): void {
  const schema = parquetSchema(meta);
  meta.row_groups.forEach((group, g) => {
    for (const chunk of group.columns) {
      const names = chunk.meta_data?.path_in_schema ?? [];
      let node = schema;
      for (const name of names) {
        const child = node.children.find((c) => c.element.name === name);
        if (!child) throw new Error(`row group ${g}: column ${names.join(".")} is not in the schema`);
        node = child;
      }
    }
  });
}

async function* parquetRows(path: string, start: number): AsyncGenerator<LocatedRow> {
  const { buffer, checkPages, close } = await fileBuffer(path);
  try {
    let meta;
    try {
      meta = await parquetMetadataAsync(buffer);
      checkColumnPaths(meta);
      checkPages(meta);
    } catch (e) {
      throw new DatasetError(`${path}: not a readable Parquet file (${e instanceof Error ? e.message : e})`);
    }
    let offset = 0;
    let index = start;
    for (const rg of meta.row_groups) {
      const n = Number(rg.num_rows);
      let rows;
      try {
        rows = await parquetReadObjects({
          file: buffer,
          metadata: meta,
          rowStart: offset,
          rowEnd: offset + n,
          compressors,
        });
      } catch (e) {
        if (e instanceof DatasetError) throw e;
        throw new DatasetError(
          `${path} rows ${offset}-${offset + n - 1}: unreadable Parquet data (${
            e instanceof Error ? e.message : e
          })`,
        );
      }
      for (let i = 0; i < rows.length; i++) {
        yield { row: rows[i] as Row, index: index++, where: `${path} row ${offset + i}` };
      }
      offset += n;
    }
  } finally {
    await close();
  }
}

/** An Arrow value as plain JSON-like data: struct rows as objects, lists as arrays, int64 as numbers. */
function plain(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return Number(v);
  if (typeof v !== "object") return v;
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>, plain);
  if (Array.isArray(v)) return v.map(plain);
  // Arrow vectors (lists) give arrays of their values, struct rows objects
  const o = v as { toJSON?: () => unknown };
  if (typeof o.toJSON === "function") return plain(o.toJSON());
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
}

/** The chunks a stream's reader gives (the caller keeps the reader, to cancel it). */
async function* chunksOf(reader: ReadableStreamDefaultReader<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (let r = await reader.read(); !r.done; r = await reader.read()) yield r.value;
}

/** Rows of an Arrow IPC stream file (what `datasets.save_to_disk` writes), record batch by record batch. */
async function* arrowRows(path: string, start: number): AsyncGenerator<LocatedRow> {
  const file = (await openStream(path)).getReader();
  let index = start;
  let i = 0;
  try {
    let reader;
    try {
      reader = await RecordBatchReader.from(checkedArrowStream(chunksOf(file), path));
    } catch (e) {
      throw new DatasetError(`${path}: not a readable Arrow file (${e instanceof Error ? e.message : e})`);
    }
    for await (const batch of reader) {
      checkArrowBatch(batch, `${path} rows ${i}–${i + batch.numRows - 1}`);
      for (let r = 0; r < batch.numRows; r++, i++) {
        const row = plain(batch.get(r));
        if (!row || typeof row !== "object" || Array.isArray(row)) {
          throw new DatasetError(`${path} row ${i}: a row must be a record`);
        }
        yield { row: row as Row, index: index++, where: `${path} row ${i}` };
      }
    }
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    throw new DatasetError(`${path} row ${i}: unreadable Arrow data (${e instanceof Error ? e.message : e})`);
  } finally {
    await file.cancel().catch(() => {}); // closes the file (a no-op once it was read to its end)
  }
}

/** The rows of data file `path`, numbered from `start`; an unknown format is a DatasetError naming the file. */
export function rowsOf(path: string, start: number): AsyncGenerator<LocatedRow> {
  // JSON and JSONL may be gzipped; Parquet and Arrow compress inside the file
  const gz = isGzip(path);
  const lower = path.toLowerCase().replace(/\.gz$/, "");
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return jsonlRows(path, start);
  if (lower.endsWith(".json")) return jsonRows(path, start);
  if (lower.endsWith(".parquet") && !gz) return parquetRows(path, start);
  if (lower.endsWith(".arrow") && !gz) return arrowRows(path, start);
  throw new DatasetError(
    `${path}: unknown dataset format (use .json, .jsonl, .json.gz, .jsonl.gz or .parquet)`,
  );
}

/** The row count of a Parquet file, from its row groups' metadata (as parquetRows reads them). */
async function parquetRowCount(path: string): Promise<number> {
  const { buffer, close } = await fileBuffer(path);
  try {
    let meta;
    try {
      meta = await parquetMetadataAsync(buffer);
    } catch (e) {
      throw new DatasetError(`${path}: not a readable Parquet file (${e instanceof Error ? e.message : e})`);
    }
    let n = 0;
    for (const [g, rg] of meta.row_groups.entries()) {
      const rows = Number(rg.num_rows);
      if (!Number.isSafeInteger(rows) || rows < 0) {
        throw new DatasetError(`${path}: corrupt Parquet file: row group ${g} claims ${rg.num_rows} rows`);
      }
      n += rows;
    }
    return n;
  } finally {
    await close();
  }
}

/** The row count of an Arrow IPC stream: its record batches' lengths (their columns are not read). */
async function arrowRowCount(path: string): Promise<number> {
  const file = (await openStream(path)).getReader();
  let n = 0;
  try {
    const reader = await RecordBatchReader.from(checkedArrowStream(chunksOf(file), path));
    for await (const batch of reader) n += batch.numRows;
    return n;
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    throw new DatasetError(`${path}: not a readable Arrow file (${e instanceof Error ? e.message : e})`);
  } finally {
    await file.cancel().catch(() => {}); // closes the file (a no-op once it was read to its end)
  }
}

/**
 * How many rows `rowsOf(path)` yields: from the metadata of a Parquet file, the record batch lengths of an Arrow
 * file, and by reading every row of JSON and JSONL (whose malformed rows are errors here as when read).
 */
export async function countFileRows(path: string): Promise<number> {
  const lower = path.toLowerCase();
  if (lower.endsWith(".parquet")) return await parquetRowCount(path);
  if (lower.endsWith(".arrow")) return await arrowRowCount(path);
  let n = 0;
  for await (const _ of rowsOf(path, 0)) n++;
  return n;
}
