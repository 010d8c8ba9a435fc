/**
 * safetensors files: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
 * {dtype, shape, data_offsets: [begin, end]} (offsets relative to the byte after the header) plus an optional
 * "__metadata__" map of strings, then the tensor data.
 *
 * The reader validates the header completely before any tensor is read (length bound, JSON, dtypes, shapes,
 * offsets inside the file, sizes matching shapes, no overlaps) and streams one tensor at a time, so peak CPU memory
 * is about the largest tensor. F32, F16 and BF16 convert to f32. The writer writes F32 (or BF16), names sorted,
 * header padded with spaces to a multiple of 8, `__metadata__ {"format": "pt"}` as PyTorch checkpoints have.
 */
import { WebDPOError } from "../gpu/errors.ts";
import { files } from "../io/platform.ts";
import type { RandomAccessFile } from "../io/types.ts";
import { isPlainFileName } from "../util/fs.ts";
import { jsonExcerpt } from "../util/json_excerpt.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { bf16ToF32, f16ToF32, f32ToBf16 } from "./dtype.ts";

/** A malformed or unreadable safetensors file. The message names the file and the problem. */
export class SafetensorsError extends WebDPOError {}

export type SafetensorsDType = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";
const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  U16: 2,
  U32: 4,
  U64: 8,
};
const LOADABLE = new Set(["F32", "F16", "BF16"]);
const MAX_HEADER = 100 * 1024 * 1024;

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  metadata: Record<string, string>;
  /** Entries in file order. */
  tensors: TensorEntry[];
  byName: Map<string, TensorEntry>;
}

/** Reads and validates the header of a safetensors file. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  let file: RandomAccessFile;
  try {
    file = await files().open(path);
  } catch (e) {
    throw new SafetensorsError(`${path}: cannot open (${e instanceof Error ? e.message : e})`);
  }
  try {
    const size = file.size;
    if (size < 8) {
      throw new SafetensorsError(`${path}: truncated: ${size} bytes, less than the 8-byte header length`);
    }
    const lenBytes = await readExactly(file, 0, 8, path);
    const n = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
    if (n > MAX_HEADER) {
      throw new SafetensorsError(`${path}: corrupt header: header length ${n} exceeds 100 MB`);
    }
    if (8 + n > size) {
      throw new SafetensorsError(
        `${path}: truncated: header length ${n} runs past the end of the ${size}-byte file`,
      );
    }
    const headerBytes = await readExactly(file, 8, n, path);
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
    } catch (e) {
      throw new SafetensorsError(
        `${path}: corrupt header: not valid JSON (${e instanceof Error ? e.message : e})`,
      );
    }
    if (!json || typeof json !== "object" || Array.isArray(json)) {
      throw new SafetensorsError(`${path}: corrupt header: the JSON is not an object`);
    }
    return parseHeader(path, json as Record<string, unknown>, 8 + n, size);
  } finally {
    await file.close();
  }
}

function parseHeader(path: string, json: Record<string, unknown>, dataStart: number, size: number) {
  const metadata: Record<string, string> = {};
  const tensors: TensorEntry[] = [];
  const dataLen = size - dataStart;
  for (const [name, v] of Object.entries(json)) {
    if (name === "__metadata__") {
      readMetadata(path, v, metadata);
      continue;
    }
    const bad = (why: string) => new SafetensorsError(`${path}: corrupt header: tensor "${name}" ${why}`);
    if (!v || typeof v !== "object") throw bad("is not an object");
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, e.dtype)) {
      throw bad(`has unknown dtype ${typeof e.dtype === "string" ? e.dtype : jsonExcerpt(e.dtype)}`);
    }
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw bad(`has an invalid shape ${jsonExcerpt(e.shape)}`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0)) {
      throw bad(`has invalid data_offsets ${jsonExcerpt(off)}`);
    }
    const [b, en] = off as number[];
    if (b > en) throw bad(`has data_offsets [${b}, ${en}] with begin after end`);
    if (en > dataLen) {
      throw new SafetensorsError(
        `${path}: truncated: tensor "${name}" ends at byte ${en} of the data section, which has ${dataLen} bytes`,
      );
    }
    const shape = e.shape as number[];
    const want = shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[e.dtype];
    if (en - b !== want) throw bad(`has ${en - b} bytes but shape [${shape}] of ${e.dtype} needs ${want}`);
    tensors.push({
      name,
      dtype: e.dtype as SafetensorsDType,
      shape,
      begin: dataStart + b,
      end: dataStart + en,
    });
  }
  const sorted = [...tensors].sort((x, y) => x.begin - y.begin || x.end - y.end);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      throw new SafetensorsError(
        `${path}: corrupt header: tensors "${sorted[i - 1].name}" and "${sorted[i].name}" overlap`,
      );
    }
  }
  return { path, metadata, tensors: sorted, byName: new Map(sorted.map((t) => [t.name, t])) };
}

/** `__metadata__`: null, or a map of names to strings (as the reference implementation requires). */
function readMetadata(path: string, v: unknown, into: Record<string, string>): void {
  if (v === null) return;
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new SafetensorsError(`${path}: corrupt header: "__metadata__" is not a map of names to strings`);
  }
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== "string") {
      throw new SafetensorsError(`${path}: corrupt header: "__metadata__" value "${k}" is not a string`);
    }
    into[k] = s;
  }
}

/** `length` bytes at `position`; a file that ends before is a SafetensorsError ("truncated"). */
async function readExactly(
  file: RandomAccessFile,
  position: number,
  length: number,
  path: string,
): Promise<Uint8Array> {
  if (position + length > file.size) {
    throw new SafetensorsError(`${path}: truncated: unexpected end of file at byte ${file.size}`);
  }
  return await file.read(position, length);
}

/** A tensor read from disk, converted to f32. */
export interface HostTensor {
  name: string;
  shape: number[];
  /** The dtype it was stored as. */
  dtype: SafetensorsDType;
  data: Float32Array;
}

/** Throws unless `readTensor` can load the dtype of `e` (F32, F16, BF16). */
export function checkLoadable(header: SafetensorsHeader, e: TensorEntry): void {
  if (!LOADABLE.has(e.dtype)) {
    throw new SafetensorsError(
      `${header.path}: tensor "${e.name}" has dtype ${e.dtype}; webdpo loads F32, F16 and BF16 weights`,
    );
  }
}

/** Reads one tensor's data (a range read of `file`, opened with `openSafetensors`) and converts it to f32. */
export async function readTensor(
  file: RandomAccessFile,
  header: SafetensorsHeader,
  e: TensorEntry,
): Promise<HostTensor> {
  checkLoadable(header, e);
  let bytes = await readExactly(file, e.begin, e.end - e.begin, header.path);
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = bytes.slice();
  let data: Float32Array;
  if (e.dtype === "F32") data = new Float32Array(bytes.buffer);
  else if (e.dtype === "BF16") data = bf16ToF32(new Uint16Array(bytes.buffer));
  else data = f16ToF32(new Uint16Array(bytes.buffer));
  return { name: e.name, shape: e.shape, dtype: e.dtype, data };
}

/** Streams the tensors of one file (optionally only those `want` accepts), one at a time. */
export async function* streamSafetensors(
  path: string,
  want: (name: string) => boolean = () => true,
): AsyncGenerator<HostTensor> {
  const header = await readSafetensorsHeader(path);
  const file = await openSafetensors(path);
  try {
    for (const e of header.tensors) if (want(e.name)) yield await readTensor(file, header, e);
  } finally {
    await file.close();
  }
}

/** Opens a safetensors file for `readTensor` (range reads, one tensor at a time). */
export async function openSafetensors(path: string): Promise<RandomAccessFile> {
  try {
    return await files().open(path);
  } catch (e) {
    throw new SafetensorsError(`${path}: cannot open (${e instanceof Error ? e.message : e})`);
  }
}

/** Reads a whole (small) file into memory. */
export async function readSafetensors(path: string): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for await (const t of streamSafetensors(path)) out.set(t.name, t);
  return out;
}

/** A tensor to write: its data now, or a function giving it when the writer reaches it (streaming). */
/** Values read in parts: `read(start, count)` gives elements [start, start + count). */
export interface RangeReader {
  read(start: number, count: number): Promise<Float32Array>;
}

export interface WritableTensor {
  name: string;
  shape: readonly number[];
  /**
   * The values: in memory, made on demand, or read in parts of at most WRITE_CHUNK elements (a GPU tensor: its
   * readback's staging and host copies then stay that small however large the tensor is).
   */
  data: Float32Array | (() => Promise<Float32Array>) | RangeReader;
}

/** Elements per part of a tensor written from a RangeReader (16 MiB of f32). */
export const WRITE_CHUNK = 2 ** 22;

/** A GPU tensor's values as a RangeReader. */
export function gpuValues(t: Tensor): RangeReader {
  return { read: (start, count) => t.readRange(start, count) };
}

export interface WriteOptions {
  /** Storage dtype: "F32" (default) or "BF16". */
  dtype?: "F32" | "BF16";
  /** Extra `__metadata__` entries (`format: "pt"` is always written). */
  metadata?: Record<string, string>;
}

/** Writes tensors to a safetensors file, one tensor in memory at a time. Names are written sorted. */
export async function writeSafetensors(
  path: string,
  tensors: WritableTensor[],
  opts: WriteOptions = {},
): Promise<void> {
  const dtype = opts.dtype ?? "F32";
  const width = dtype === "F32" ? 4 : 2;
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const names = new Set<string>();
  const header: Record<string, unknown> = { __metadata__: { format: "pt", ...opts.metadata } };
  let offset = 0;
  for (const t of sorted) {
    if (names.has(t.name)) throw new SafetensorsError(`${path}: tensor name "${t.name}" appears twice`);
    names.add(t.name);
    const n = t.shape.reduce((a, d) => a * d, 1) * width;
    header[t.name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const file = await files().create(path);
  try {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
    await file.write(len);
    await file.write(json);
    const put = async (data: Float32Array) => {
      const bytes = dtype === "F32" ? data : f32ToBf16(data);
      await file.write(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    };
    for (const t of sorted) {
      const n = t.shape.reduce((a, d) => a * d, 1);
      const src = t.data;
      if (!(src instanceof Float32Array) && typeof src !== "function") {
        for (let start = 0; start < n; start += WRITE_CHUNK) {
          const count = Math.min(WRITE_CHUNK, n - start);
          const part = await src.read(start, count);
          if (part.length !== count) {
            throw new SafetensorsError(
              `${path}: tensor "${t.name}": a read of ${count} values gave ${part.length}`,
            );
          }
          await put(part);
        }
        continue;
      }
      const data = typeof src === "function" ? await src() : src;
      if (data.length !== n) {
        throw new SafetensorsError(
          `${path}: tensor "${t.name}" has ${data.length} values, shape [${t.shape}] needs ${n}`,
        );
      }
      await put(data);
    }
  } catch (e) {
    await file.abort();
    throw e;
  }
  await file.close();
}

/**
 * `model.safetensors.index.json`: tensor name → shard file name. Each shard must be a file of the index's folder
 * (a name without a path).
 */
export async function readShardIndex(path: string): Promise<Map<string, string>> {
  let json: unknown;
  try {
    json = JSON.parse(await files().readText(path));
  } catch (e) {
    throw new SafetensorsError(
      `${path}: cannot read the shard index (${e instanceof Error ? e.message : e})`,
    );
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (!map || typeof map !== "object" || Array.isArray(map)) {
    throw new SafetensorsError(`${path}: the shard index has no "weight_map" object`);
  }
  const out = new Map<string, string>();
  for (const [name, file] of Object.entries(map)) {
    if (!isPlainFileName(file)) {
      throw new SafetensorsError(
        `${path}: weight_map["${name}"] is ${jsonExcerpt(file)}, not the name of a file in the folder`,
      );
    }
    out.set(name, file);
  }
  return out;
}
