/**
 * A check of the page headers of a Parquet column chunk, made before hyparquet decodes it. hyparquet trusts the
 * sizes a page header claims: a negative or missing compressed size moves its reader backwards or nowhere (a loop
 * that never ends), and an uncompressed size is allocated as claimed before decompressing. Page headers are Thrift
 * compact-protocol structs (PageHeader: 1 type, 2 uncompressed_page_size, 3 compressed_page_size, ...); this reads
 * them with every length checked against the chunk.
 */

/** The most an uncompressed page may claim per compressed byte: deflate's limit (1032:1). */
const MAX_RATIO = 1032;
/** Any page may claim this much, whatever its compressed size. */
const MIN_UNCOMPRESSED_LIMIT = 1 << 20;
/** Thrift structs nested deeper than this are refused (the recursion is bounded). */
const MAX_DEPTH = 32;

type Struct = Map<number, number | Struct>;

class CompactReader {
  pos = 0;
  constructor(private readonly bytes: Uint8Array) {}

  byte(): number {
    if (this.pos >= this.bytes.length) throw new Error("a page header runs past the end of its column chunk");
    return this.bytes[this.pos++];
  }

  skip(n: number): void {
    if (!(n >= 0 && this.pos + n <= this.bytes.length)) {
      throw new Error(`a page header field of ${n} bytes runs past the end of its column chunk`);
    }
    this.pos += n;
  }

  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
    throw new Error("a page header holds a varint longer than 10 bytes");
  }

  zigzag(): number {
    const v = this.varint();
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }

  /** A struct's integer and struct fields by id (other values are checked and skipped). */
  struct(depth: number): Struct {
    if (depth > MAX_DEPTH) throw new Error(`a page header nests structs more than ${MAX_DEPTH} deep`);
    const fields: Struct = new Map();
    let id = 0;
    for (;;) {
      const head = this.byte();
      if (head === 0) return fields;
      const type = head & 0x0f;
      id = head >> 4 ? id + (head >> 4) : this.zigzag();
      if (type >= 4 && type <= 6) fields.set(id, this.zigzag());
      else if (type === 12) fields.set(id, this.struct(depth + 1));
      else this.value(type, depth);
    }
  }

  /** Skips one value of a Thrift compact type. */
  value(type: number, depth: number): void {
    switch (type) {
      case 1:
      case 2:
        return; // a boolean field: the value is in the type
      case 3:
        return this.skip(1);
      case 4:
      case 5:
      case 6:
        return void this.varint();
      case 7:
        return this.skip(8);
      case 8:
        return this.skip(this.varint());
      case 9:
      case 10: {
        const head = this.byte();
        const size = head >> 4 === 15 ? this.varint() : head >> 4;
        const element = head & 0x0f;
        for (let i = 0; i < size; i++) {
          if (element === 1 || element === 2) this.skip(1); // a boolean element is a byte
          else this.value(element, depth);
        }
        return;
      }
      case 11: {
        const size = this.varint();
        if (size === 0) return;
        const kinds = this.byte();
        for (let i = 0; i < size; i++) {
          this.value(kinds >> 4, depth);
          this.value(kinds & 0x0f, depth);
        }
        return;
      }
      case 12:
        return void this.struct(depth + 1);
      default:
        throw new Error(`a page header holds a field of unknown Thrift type ${type}`);
    }
  }
}

/**
 * The header each page type requires, by PageHeader field, and its required counts: type 0 (DATA_PAGE) field 5
 * DataPageHeader (1 num_values), type 2 (DICTIONARY_PAGE) field 7 DictionaryPageHeader (1 num_values), type 3
 * (DATA_PAGE_V2) field 8 DataPageHeaderV2 (1 num_values, 2 num_nulls, 3 num_rows, 5 definition_levels_byte_length,
 * 6 repetition_levels_byte_length). A missing one (or a boolean in its place) made hyparquet loop forever.
 */
const PAGE_HEADERS = new Map<number, [number, string, [number, string][]]>([
  [0, [5, "data page header", [[1, "num_values"]]]],
  [2, [7, "dictionary page header", [[1, "num_values"]]]],
  [3, [8, "data page header v2", [
    [1, "num_values"],
    [2, "num_nulls"],
    [3, "num_rows"],
    [5, "definition_levels_byte_length"],
    [6, "repetition_levels_byte_length"],
  ]]],
]);

/** What is wrong with a page header's type-specific header, or null (other page types hyparquet refuses). */
function headerProblem(header: Struct, compressed: number): string | null {
  const type = header.get(1);
  const spec = typeof type === "number" ? PAGE_HEADERS.get(type) : undefined;
  if (spec === undefined) return null;
  const [field, what, counts] = spec;
  const sub = header.get(field);
  if (!(sub instanceof Map)) return `it has no ${what}`;
  for (const [id, name] of counts) {
    const v = sub.get(id);
    if (typeof v !== "number" || v < 0) return `its ${what} has ${name} ${v}`;
  }
  if (field === 8 && (sub.get(5) as number) + (sub.get(6) as number) > compressed) {
    return `its ${what} has levels longer than the page`;
  }
  return null;
}

/**
 * What is wrong with the pages of a column chunk's bytes (a page header that does not parse, a compressed size
 * outside the chunk, an uncompressed size that is negative or more than MAX_RATIO times the compressed one), or
 * null.
 */
export function pageProblem(chunk: Uint8Array): string | null {
  const r = new CompactReader(chunk);
  try {
    while (r.pos < chunk.length - 1) {
      const at = r.pos;
      const header = r.struct(0);
      const uncompressed = header.get(2);
      const compressed = header.get(3);
      if (typeof compressed !== "number" || compressed < 0 || r.pos + compressed > chunk.length) {
        return `the page at byte ${at} of a column chunk claims ${compressed} compressed bytes, ` +
          `${chunk.length - r.pos} remain`;
      }
      const limit = Math.max(compressed * MAX_RATIO, MIN_UNCOMPRESSED_LIMIT);
      if (typeof uncompressed !== "number" || uncompressed < 0 || uncompressed > limit) {
        return `the page at byte ${at} of a column chunk claims ${uncompressed} bytes uncompressed from ` +
          `${compressed} compressed`;
      }
      const problem = headerProblem(header, compressed);
      if (problem !== null) return `the page at byte ${at} of a column chunk: ${problem}`;
      r.skip(compressed);
    }
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  return null;
}
