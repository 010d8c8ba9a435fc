/**
 * Checks that make apache-arrow safe on Arrow IPC stream files from strangers (`datasets.save_to_disk` folders).
 *
 * apache-arrow decodes a message's FlatBuffers metadata without bounds checks: a read past the end gives 0, and
 * it loops over as many schema fields, custom-metadata entries, field nodes and buffers as a vector's length
 * claims (one flipped byte makes a loop of up to 2^31 iterations, each building an object). It also trusts the
 * row counts and value offsets of a record batch, so a damaged offset makes one row a list of a billion nulls.
 *
 * - `checkedArrowStream` sits between the file and apache-arrow. It follows the stream's framing (continuation
 *   marker, metadata length, metadata, body) and verifies each message's metadata before passing it on: every
 *   table, vector and string inside the metadata's bytes, vectors no longer than the bytes that hold them, at most
 *   one table visit per metadata byte, fields nested at most 64 deep; a record batch's buffers inside its body,
 *   and at most 8 rows or values per body byte (8 × body bytes + 64) in the batch and each field node. Nothing is
 *   allocated by a claimed length: the metadata is collected as its bytes arrive, and a body is passed through.
 * - `checkArrowBatch` checks a decoded record batch before its rows are read: validity bitmaps, values and
 *   children long enough for the rows, and value offsets that rise and stay inside the values they index.
 *
 * Both throw a DatasetError naming the file and the place (the message and its byte offset, or the rows and the
 * column).
 */
import { type Data, DataType, type RecordBatch } from "apache-arrow";
import { DatasetError } from "./tokenize_row.ts";

/** How deep fields may nest (struct of list of struct …). */
const MAX_FIELD_DEPTH = 64;

/** FlatBuffers union tags of Message.header (Arrow's Message.fbs). */
const SCHEMA = 1, DICTIONARY_BATCH = 2, RECORD_BATCH = 3;
/** Field.type tags whose tables hold more than scalars (Arrow's Schema.fbs). */
const TYPE_TIMESTAMP = 10, TYPE_UNION = 14;

class MetadataProblem extends Error {}

/** A bounds-checked reader of one message's FlatBuffers metadata, as apache-arrow's generated code reads it. */
class Flat {
  private readonly view: DataView;
  private visits = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(at: number, size: number, what: string): void {
    if (!(at >= 0 && at + size <= this.bytes.length)) {
      throw new MetadataProblem(`${what} lies outside the ${this.bytes.length} bytes of the metadata`);
    }
  }

  i32(at: number): number {
    return this.view.getInt32(at, true);
  }

  /** The table at `at + int32 at at` (a reference, as flatbuffers' `__indirect` follows it), checked. */
  table(at: number, what: string): number {
    this.need(at, 4, what);
    const t = at + this.i32(at);
    if (++this.visits > this.bytes.length) {
      throw new MetadataProblem(`${what}: more tables are referenced than the metadata has bytes`);
    }
    this.need(t, 4, what);
    const vt = t - this.i32(t);
    this.need(vt, 4, `the field table of ${what}`);
    const size = this.view.getInt16(vt, true);
    if (size < 4 || size % 2 !== 0) throw new MetadataProblem(`${what}: a field table of ${size} bytes`);
    this.need(vt, size, `the field table of ${what}`);
    return t;
  }

  /** Where field `slot` of table `t` is (checked to hold `size` bytes), or null when it is absent. */
  field(t: number, slot: number, size: number, what: string): number | null {
    const vt = t - this.i32(t);
    const o = 4 + 2 * slot;
    if (o >= this.view.getInt16(vt, true)) return null;
    const off = this.view.getInt16(vt + o, true);
    if (off === 0) return null;
    if (off < 0) throw new MetadataProblem(`${what}: a negative field offset`);
    this.need(t + off, size, what);
    return t + off;
  }

  /** Field `slot` of `t` as an int64 (default 0), as a number (exact up to 2^53). */
  int64(t: number, slot: number, what: string): number {
    const at = this.field(t, slot, 8, what);
    return at === null ? 0 : Number(this.view.getBigInt64(at, true));
  }

  /** Field `slot` of `t` as an unsigned byte (default 0). */
  u8(t: number, slot: number, what: string): number {
    const at = this.field(t, slot, 1, what);
    return at === null ? 0 : this.bytes[at];
  }

  /** The vector in field `slot` of `t`: where its elements start and how many there are (none when absent). */
  vector(t: number, slot: number, elementSize: number, what: string): { start: number; length: number } {
    const at = this.field(t, slot, 4, what);
    if (at === null) return { start: 0, length: 0 };
    const v = at + this.i32(at);
    this.need(v, 4, what);
    const length = this.i32(v);
    if (length < 0 || length * elementSize > this.bytes.length - v - 4) {
      throw new MetadataProblem(
        `${what} claims ${length} elements, more than the ${this.bytes.length - v - 4} bytes after it hold`,
      );
    }
    return { start: v + 4, length };
  }

  /** The tables of a vector of tables in field `slot` of `t`. */
  tables(t: number, slot: number, what: string): number[] {
    const { start, length } = this.vector(t, slot, 4, what);
    return Array.from({ length }, (_, i) => this.table(start + 4 * i, `${what}[${i}]`));
  }

  /** Checks the string in field `slot` of `t`, if any. */
  string(t: number, slot: number, what: string): void {
    this.vector(t, slot, 1, what);
  }

  /** The int64 pairs of a vector of 16-byte structs (FieldNode, Buffer) in field `slot` of `t`. */
  pairs(t: number, slot: number, what: string): [number, number][] {
    const { start, length } = this.vector(t, slot, 16, what);
    return Array.from({ length }, (_, i) => [
      Number(this.view.getBigInt64(start + 16 * i, true)),
      Number(this.view.getBigInt64(start + 16 * i + 8, true)),
    ]);
  }
}

function keyValues(f: Flat, t: number, slot: number, what: string): void {
  for (const kv of f.tables(t, slot, what)) {
    f.string(kv, 0, `${what} key`);
    f.string(kv, 1, `${what} value`);
  }
}

function checkField(f: Flat, t: number, what: string, depth: number): void {
  if (depth > MAX_FIELD_DEPTH) {
    throw new MetadataProblem(`${what}: fields nest more than ${MAX_FIELD_DEPTH} deep`);
  }
  f.string(t, 0, `the name of ${what}`);
  const typeTag = f.u8(t, 2, what);
  const typeAt = f.field(t, 3, 4, what);
  if (typeAt !== null) {
    const type = f.table(typeAt, `the type of ${what}`);
    if (typeTag === TYPE_TIMESTAMP) f.string(type, 1, `the time zone of ${what}`);
    if (typeTag === TYPE_UNION) f.vector(type, 1, 4, `the type ids of ${what}`);
  }
  const dictAt = f.field(t, 4, 4, what);
  if (dictAt !== null) {
    const dict = f.table(dictAt, `the dictionary encoding of ${what}`);
    const indexAt = f.field(dict, 1, 4, `the dictionary encoding of ${what}`);
    if (indexAt !== null) f.table(indexAt, `the dictionary index type of ${what}`);
  }
  f.tables(t, 5, `the children of ${what}`).forEach((c, i) =>
    checkField(f, c, `${what}.children[${i}]`, depth + 1)
  );
  keyValues(f, t, 6, `the custom metadata of ${what}`);
}

function checkRecordBatch(f: Flat, t: number, bodyLength: number, what: string): void {
  const most = 8 * bodyLength + 64;
  const rows = f.int64(t, 0, what);
  if (rows < 0 || rows > most) {
    throw new MetadataProblem(
      `${what} claims ${rows} rows, more than its ${bodyLength}-byte body can hold (at most 8 per byte, plus 64)`,
    );
  }
  f.pairs(t, 1, `the field nodes of ${what}`).forEach(([length, nulls], i) => {
    if (length < 0 || length > most || nulls < 0 || nulls > length) {
      throw new MetadataProblem(
        `field node ${i} of ${what} claims ${length} values (${nulls} null); its ${bodyLength}-byte body holds ` +
          `at most ${most}`,
      );
    }
  });
  f.pairs(t, 2, `the buffers of ${what}`).forEach(([offset, length], i) => {
    if (offset < 0 || length < 0 || offset + length > bodyLength) {
      throw new MetadataProblem(
        `buffer ${i} of ${what} (${length} bytes at ${offset}) lies outside its ${bodyLength}-byte body`,
      );
    }
  });
  const compressionAt = f.field(t, 3, 4, what);
  if (compressionAt !== null) f.table(compressionAt, `the compression of ${what}`);
  f.vector(t, 4, 8, `the variadic buffer counts of ${what}`);
}

/** Verifies one message's metadata; returns its header type and body length. */
function checkMessage(meta: Uint8Array, first: boolean): { type: number; bodyLength: number } {
  const f = new Flat(meta);
  const m = f.table(0, "the message");
  const type = f.u8(m, 1, "the message");
  const bodyLength = f.int64(m, 3, "the message");
  if (bodyLength < 0) throw new MetadataProblem(`the message claims a body of ${bodyLength} bytes`);
  keyValues(f, m, 4, "the custom metadata of the message");
  if (first && type !== SCHEMA) throw new MetadataProblem(`the first message is not a schema (type ${type})`);
  const headerAt = f.field(m, 2, 4, "the message");
  if (headerAt === null) throw new MetadataProblem("the message has no header");
  const header = f.table(headerAt, "the message header");
  if (type === SCHEMA) {
    f.tables(header, 1, "the schema's fields").forEach((t, i) => checkField(f, t, `field ${i}`, 0));
    keyValues(f, header, 2, "the schema's custom metadata");
    f.vector(header, 3, 8, "the schema's features");
  } else if (type === RECORD_BATCH) {
    checkRecordBatch(f, header, bodyLength, "the record batch");
  } else if (type === DICTIONARY_BATCH) {
    const dataAt = f.field(header, 1, 4, "the dictionary batch");
    if (dataAt === null) throw new MetadataProblem("the dictionary batch has no record batch");
    checkRecordBatch(f, f.table(dataAt, "the dictionary batch's data"), bodyLength, "the dictionary batch");
  } else {
    throw new MetadataProblem(`message type ${type} is not a schema, record batch or dictionary batch`);
  }
  return { type, bodyLength };
}

/** Bytes from an async source, taken in exact counts. */
class Bytes {
  private head: Uint8Array = new Uint8Array(0);
  /** Bytes taken so far (the file offset of what comes next). */
  offset = 0;

  constructor(private readonly source: AsyncIterator<Uint8Array>) {}

  private async fill(): Promise<boolean> {
    while (this.head.length === 0) {
      const r = await this.source.next();
      if (r.done) return false;
      this.head = r.value;
    }
    return true;
  }

  /** Up to `n` bytes (fewer only where the source ends), collected as they arrive. */
  async take(n: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let got = 0;
    while (got < n && await this.fill()) {
      const part = this.head.subarray(0, Math.min(n - got, this.head.length));
      this.head = this.head.subarray(part.length);
      parts.push(part);
      got += part.length;
    }
    this.offset += got;
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(got);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** Up to `n` bytes as the source's pieces (fewer only where it ends). */
  async *pass(n: number): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0 && await this.fill()) {
      const part = this.head.subarray(0, Math.min(left, this.head.length));
      this.head = this.head.subarray(part.length);
      left -= part.length;
      this.offset += part.length;
      yield part;
    }
  }
}

/**
 * The bytes of the Arrow IPC stream `source` (the file at `path`), passed on as each message checks out; a
 * message that does not is a DatasetError naming the file, the message and its byte offset.
 */
export async function* checkedArrowStream(
  source: AsyncIterable<Uint8Array>,
  path: string,
): AsyncGenerator<Uint8Array> {
  const bytes = new Bytes(source[Symbol.asyncIterator]());
  for (let k = 1;; k++) {
    const start = bytes.offset;
    const fail = (why: string): never => {
      throw new DatasetError(`${path}: not a readable Arrow stream: message ${k} (at byte ${start}): ${why}`);
    };
    let prefix = await bytes.take(4);
    if (prefix.length === 0) return; // the stream may end without its end-of-stream marker
    let length = prefix.length === 4 ? new DataView(prefix.buffer, prefix.byteOffset).getInt32(0, true) : NaN;
    if (length === -1) {
      // the continuation marker, then the length
      yield prefix;
      prefix = await bytes.take(4);
      if (prefix.length === 0) return;
      length = prefix.length === 4 ? new DataView(prefix.buffer, prefix.byteOffset).getInt32(0, true) : NaN;
    }
    if (Number.isNaN(length)) fail("the file ends inside the metadata length");
    if (length < 0) fail(`a metadata length of ${length}`);
    yield prefix;
    if (length === 0) return; // the end-of-stream marker
    const meta = await bytes.take(length);
    if (meta.length < length) fail(`the metadata claims ${length} bytes, the file ends after ${meta.length}`);
    let bodyLength = 0;
    try {
      ({ bodyLength } = checkMessage(meta, k === 1));
    } catch (e) {
      if (e instanceof MetadataProblem) fail(e.message);
      throw e;
    }
    yield meta;
    let got = 0;
    for await (const part of bytes.pass(bodyLength)) {
      got += part.length;
      yield part;
    }
    if (got < bodyLength) fail(`the body claims ${bodyLength} bytes, the file ends after ${got}`);
  }
}

/** The first of offsets[from..to] that falls below the one before it (or 0) or passes `limit`; -1 if none. */
function badOffset(offsets: ArrayLike<number | bigint>, from: number, to: number, limit: number): number {
  let prev = 0;
  for (let i = from; i <= to; i++) {
    const o = Number(offsets[i]);
    if (!(o >= prev && o <= limit)) return i;
    prev = o;
  }
  return -1;
}

function checkData(d: Data, what: string, fail: (why: string) => never, depth: number): void {
  if (depth > MAX_FIELD_DEPTH) fail(`${what}: columns nest more than ${MAX_FIELD_DEPTH} deep`);
  const need = d.offset + d.length;
  const t = d.type;
  const bitmap = d.nullBitmap as Uint8Array | undefined;
  if (bitmap && bitmap.length > 0 && bitmap.length * 8 < need) {
    fail(`${what}: the validity bitmap covers ${bitmap.length * 8} values, the column has ${need}`);
  }
  const offsets = (limit: number, of: string) => {
    const o = d.valueOffsets as ArrayLike<number | bigint> | undefined;
    if (!o || o.length < need + 1) fail(`${what}: ${o?.length ?? 0} value offsets for ${need} values`);
    const bad = badOffset(o!, d.offset, need, limit);
    if (bad >= 0) {
      fail(
        `${what}: value offset ${bad} (${o![bad]}) falls below the one before it or past the ${limit} ${of}`,
      );
    }
  };
  const values = (count: number, of: string) => {
    const have = (d.values as ArrayLike<unknown> | undefined)?.length ?? 0;
    if (have < count) fail(`${what}: ${have} ${of} for ${need} values, which need ${count}`);
  };
  if (
    DataType.isUtf8(t) || DataType.isBinary(t) || DataType.isLargeUtf8(t) || DataType.isLargeBinary(t)
  ) {
    offsets((d.values as Uint8Array | undefined)?.length ?? 0, "bytes of values");
  } else if (DataType.isList(t) || DataType.isMap(t) || DataType.isLargeList(t)) {
    offsets(d.children[0]?.length ?? 0, "values of its child");
  } else if (DataType.isFixedSizeList(t)) {
    const size = t.listSize;
    if (!(size >= 0) || (d.children[0]?.length ?? 0) < need * size) {
      fail(`${what}: lists of ${size} for ${need} rows, but the child holds ${d.children[0]?.length ?? 0}`);
    }
  } else if (DataType.isStruct(t)) {
    d.children.forEach((c, i) => {
      if (c.length < need) fail(`${what}: field ${i} holds ${c.length} values for ${need} rows`);
    });
  } else if (DataType.isBool(t)) {
    values(Math.ceil(need / 8), "bytes of values");
  } else if (DataType.isUnion(t)) {
    const ids = (d.typeIds as ArrayLike<number> | undefined)?.length ?? 0;
    if (ids < need) fail(`${what}: ${ids} type ids for ${need} values`);
  } else if (
    DataType.isInt(t) || DataType.isFloat(t) || DataType.isDate(t) || DataType.isTime(t) ||
    DataType.isTimestamp(t) || DataType.isDecimal(t) || DataType.isInterval(t) || DataType.isDuration(t) ||
    DataType.isFixedSizeBinary(t) || DataType.isDictionary(t) || DataType.isUtf8View(t) ||
    DataType.isBinaryView(t)
  ) {
    values(need * d.stride, "elements of values");
  }
  const fields = (t as { children?: { name?: unknown }[] }).children;
  d.children.forEach((c, i) => checkData(c, `${what}.${String(fields?.[i]?.name ?? i)}`, fail, depth + 1));
  if (DataType.isDictionary(t)) {
    for (const chunk of d.dictionary?.data ?? []) {
      checkData(chunk, `the dictionary of ${what}`, fail, depth + 1);
    }
  }
}

/**
 * Checks a decoded record batch before its rows are read (`where` names its rows, e.g. "file rows 0–99"): a
 * DatasetError names the column where the bitmaps, values, children or offsets do not fit its row count.
 */
export function checkArrowBatch(batch: RecordBatch, where: string): void {
  const fail = (why: string): never => {
    throw new DatasetError(`${where}: unreadable Arrow data: ${why}`);
  };
  const names = batch.schema.fields.map((f) => f.name);
  batch.data.children.forEach((c, i) => {
    if (c.length < batch.numRows) {
      fail(`column "${names[i]}" holds ${c.length} values for ${batch.numRows} rows`);
    }
    checkData(c, `column "${names[i]}"`, fail, 0);
  });
}
