/**
 * Fuzzes the Arrow IPC stream reader of `datasets.save_to_disk` folders (src/data/arrow_checks.ts in front of
 * apache-arrow): the hh-rlhf fixture's data file damaged anywhere, damaged in its metadata (the schema and record
 * batch messages: bytes flipped, cut, inserted, and lengths and offsets overwritten with edge values), and files
 * written by apache-arrow from generated rows with nested columns (lists of structs, int64, floats, booleans,
 * nulls), damaged in turn.
 */
import fc from "fast-check";
import {
  Bool,
  Field,
  Float64,
  Int32,
  List,
  Struct,
  Table,
  tableToIPC,
  Utf8,
  vectorFromArray,
} from "apache-arrow";
import { fuzzStep, fuzzTests } from "./fuzz_util.ts";
import { concatBytes, EDGE_NUMBERS, jsonBytes, mutatedBytes } from "./fuzz_mutations.ts";

const TARGETS = new URL("./fuzz_targets/datasets.ts", import.meta.url);
const read = (path: string) => Deno.readFile(new URL(path, import.meta.url));
const SAVE_TO_DISK = "./fixtures/datasets/hh-save-to-disk/train/";
const ARROW = await read(`${SAVE_TO_DISK}data-00000-of-00001.arrow`);
const STATE = JSON.parse(new TextDecoder().decode(await read(`${SAVE_TO_DISK}state.json`)));

/** The end of the metadata of the stream's first `n` messages (where the body of message n starts). */
function metadataEnd(bytes: Uint8Array, n: number): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  for (let k = 0; k < n; k++) {
    let length = dv.getInt32(at, true);
    at += 4;
    if (length === -1) {
      length = dv.getInt32(at, true);
      at += 4;
    }
    const meta = at;
    at += length;
    if (k === n - 1) break;
    // skip the body: Message.bodyLength (field 3 of the root table)
    const root = meta + dv.getInt32(meta, true);
    const vtable = root - dv.getInt32(root, true);
    const off = dv.getInt16(vtable, true) > 10 ? dv.getInt16(vtable + 10, true) : 0;
    at += off ? Number(dv.getBigInt64(root + off, true)) : 0;
  }
  return at;
}

/** The schema message and the first record batch's metadata: the bytes a flatbuffers reader walks. */
const HEAD = metadataEnd(ARROW, 2);

/** Integers written over the metadata: the edge values, and negative ones. */
const OVERWRITES = [
  ...EDGE_NUMBERS.filter((n) => Number.isInteger(n) && Math.abs(n) < 2 ** 63),
  -2,
  -8,
  -(2 ** 31),
];

/** `bytes` with an edge integer written (little-endian, 4 or 8 bytes) at an aligned place before `end`. */
function overwritten(bytes: Uint8Array, end: number): fc.Arbitrary<Uint8Array> {
  return fc.record({
    at: fc.nat({ max: Math.floor((end - 8) / 4) }),
    wide: fc.boolean(),
    value: fc.constantFrom(...OVERWRITES),
  }).map(({ at, wide, value }) => {
    const out = bytes.slice();
    const dv = new DataView(out.buffer);
    if (wide) dv.setBigInt64(4 * at, BigInt(value), true);
    else dv.setInt32(4 * at, Number(BigInt.asIntN(32, BigInt(value))), true);
    return out;
  });
}

/** Damage confined to the first `end` bytes. */
const damagedHead = (bytes: Uint8Array, end: number) =>
  fc.oneof(
    mutatedBytes(bytes.subarray(0, end)).map((h) => concatBytes(h, bytes.subarray(end))),
    overwritten(bytes, end),
  );

interface GeneratedRow {
  prompt: { role: string; content: string }[];
  chosen: string;
  rejected: string | null;
  score: number;
  id: number;
  tags: boolean[];
}

/** Rows with the columns a conversational DPO dataset has, and a few of other types. */
const ROWS: fc.Arbitrary<GeneratedRow[]> = fc.array(
  fc.record({
    prompt: fc.array(fc.record({ role: fc.constantFrom("user", "assistant"), content: fc.string() }), {
      maxLength: 3,
    }),
    chosen: fc.string({ maxLength: 40 }),
    rejected: fc.option(fc.string({ maxLength: 40 })),
    score: fc.float({ noNaN: true }),
    id: fc.integer(),
    tags: fc.array(fc.boolean(), { maxLength: 4 }),
  }),
  { minLength: 1, maxLength: 8 },
);

const list = (item: Utf8 | Bool | Struct) => new List(new Field("item", item, true));
const MESSAGE = new Struct([new Field("role", new Utf8(), true), new Field("content", new Utf8(), true)]);

/** The Arrow stream apache-arrow writes for `rows` (one record batch). */
function arrowStream(rows: GeneratedRow[]): Uint8Array {
  const column = (key: keyof GeneratedRow, type: Utf8 | List | Float64 | Int32) =>
    vectorFromArray(rows.map((r) => r[key]) as never[], type);
  return tableToIPC(
    new Table({
      prompt: column("prompt", list(MESSAGE)),
      chosen: column("chosen", new Utf8()),
      rejected: column("rejected", new Utf8()),
      score: column("score", new Float64()),
      id: column("id", new Int32()),
      tags: column("tags", list(new Bool())),
    }),
    "stream",
  );
}

/** An Arrow stream written by apache-arrow from generated rows, damaged anywhere or in its metadata. */
const GENERATED = ROWS.chain((rows) => {
  const bytes = arrowStream(rows);
  return fc.oneof(mutatedBytes(bytes), damagedHead(bytes, metadataEnd(bytes, 2)));
});

/** A save_to_disk split folder holding `arrow` as its data file. */
const folder = (arrow: Uint8Array) => ({
  files: { "train/state.json": jsonBytes(STATE), "train/data-00000-of-00001.arrow": arrow },
  args: { path: "train" },
});

/** Errors name the file and the place: the message and its byte offset, or the rows (and the column). */
const NAMES =
  /<dir>\/train\/data-00000-of-00001\.arrow(: not a readable Arrow stream: message \d+ \(at byte \d+\)| rows? \d+)/;

fuzzTests(
  "fuzz arrow",
  [
    ["the fixture damaged anywhere", mutatedBytes(ARROW), 40],
    ["the fixture's metadata damaged: bytes, lengths and offsets", damagedHead(ARROW, HEAD), 120],
    ["files written from generated rows, damaged", GENERATED, 60],
  ].map(([what, cases, runs]) =>
    fuzzStep(what as string, {
      module: TARGETS,
      target: "datasetRows",
      cases: (cases as fc.Arbitrary<Uint8Array>).map(folder),
      request: (c) => c,
      names: NAMES,
      runs: runs as number,
    })
  ),
);
