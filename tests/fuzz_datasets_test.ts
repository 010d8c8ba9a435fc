/**
 * Fuzzes the dataset readers: JSONL and JSON (damaged as text and as JSON), gzipped JSONL (damaged gzip, and
 * valid gzip of damaged text), Parquet (damaged anywhere, and in its footer: the metadata and its length), and a
 * `datasets.save_to_disk` folder (damaged state.json and dataset_dict.json).
 */
import fc from "fast-check";
import { parquetWriteBuffer } from "hyparquet-writer";
import { gzipSync } from "node:zlib";
import { fuzzStep, fuzzTests } from "./fuzz_util.ts";
import { concatBytes, damagedJsonFile, jsonBytes, mutatedBytes } from "./fuzz_mutations.ts";

const TARGETS = new URL("./fuzz_targets/datasets.ts", import.meta.url);
const read = (path: string) => Deno.readFile(new URL(path, import.meta.url));
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

const DPO_LINES = text(await read("../examples/tiny-chat/data/dpo_train.jsonl")).split("\n").slice(0, 6);
const UF_LINES = text(await read("./fixtures/datasets/ultrafeedback-shaped.jsonl")).split("\n").filter((l) =>
  l
);
const ROWS: Record<string, unknown>[] = [...DPO_LINES, ...UF_LINES].filter((l) => l).map((l) =>
  JSON.parse(l)
);
const JSONL = new TextEncoder().encode(ROWS.map((r) => JSON.stringify(r)).join("\n") + "\n");
const HH_GZ = await read("./fixtures/datasets/hh-rlhf-sample.jsonl.gz");

const PARQUET = new Uint8Array(parquetWriteBuffer({
  columnData: [
    { name: "prompt", data: ROWS.map((r) => JSON.stringify(r.prompt)), type: "STRING" },
    { name: "chosen", data: ROWS.map((r) => JSON.stringify(r.chosen)), type: "STRING" },
    { name: "rejected", data: ROWS.map((r) => JSON.stringify(r.rejected)), type: "STRING" },
    { name: "score", data: ROWS.map((_, i) => i), type: "INT32" },
  ],
  rowGroupSize: 4,
}));
/** The footer: the Thrift metadata, its 4-byte length and "PAR1". */
const FOOTER_LENGTH = new DataView(PARQUET.buffer).getUint32(PARQUET.length - 8, true) + 8;

const SAVE_TO_DISK = "./fixtures/datasets/hh-save-to-disk/";
const ARROW = await read(`${SAVE_TO_DISK}train/data-00000-of-00001.arrow`);
const STATE = JSON.parse(text(await read(`${SAVE_TO_DISK}train/state.json`)));
const DICT = JSON.parse(text(await read(`${SAVE_TO_DISK}dataset_dict.json`)));

/** A data file's errors name it (and the line or row where they are about one). */
const NAMES = /<dir>\/data\.(jsonl|json|parquet)(\.gz)?[: ]/;
/** A save_to_disk folder's errors name its JSON files, or the data file state.json lists. */
const SAVE_TO_DISK_NAMES = /<dir>\/(train\/|dataset_dict\.json|state\.json)|<dir>: no split/;

const file = (path: string) => (bytes: Uint8Array) => ({ files: { [path]: bytes }, args: { path } });

/** A save_to_disk folder with train/ changed as given, read as its train split. */
const saveToDisk = (changes: { state?: Uint8Array; dict?: Uint8Array }) => ({
  files: {
    "dataset_dict.json": changes.dict ?? jsonBytes(DICT),
    "train/state.json": changes.state ?? jsonBytes(STATE),
    "train/data-00000-of-00001.arrow": ARROW,
  },
  args: { path: ".", split: "train" },
});

type Case = { files: Record<string, Uint8Array>; args: { path: string; split?: string } };

const CASES: [string, fc.Arbitrary<Case>, number, RegExp?][] = [
  [
    "JSONL damaged as text and as rows",
    fc.oneof(
      mutatedBytes(JSONL),
      fc.tuple(fc.nat(ROWS.length - 1), damagedJsonFile(ROWS[0])).map(([i, row]) =>
        concatBytes(
          ...ROWS.map((r, j) => j === i ? row : jsonBytes(r)).flatMap((b) => [b, Uint8Array.of(10)]),
        )
      ),
    ).map(file("data.jsonl")),
    50,
  ],
  ["JSON damaged", damagedJsonFile(ROWS).map(file("data.json")), 40],
  [
    "gzipped JSONL: damaged gzip, and gzip of damaged JSONL",
    fc.oneof(
      mutatedBytes(HH_GZ).map(file("data.jsonl.gz")),
      mutatedBytes(JSONL).map((b) => file("data.jsonl.gz")(new Uint8Array(gzipSync(b)))),
    ),
    40,
  ],
  [
    "Parquet damaged anywhere, or in its footer",
    fc.oneof(
      mutatedBytes(PARQUET),
      mutatedBytes(PARQUET.subarray(PARQUET.length - FOOTER_LENGTH)).map((footer) =>
        concatBytes(PARQUET.subarray(0, PARQUET.length - FOOTER_LENGTH), footer)
      ),
    ).map(file("data.parquet")),
    60,
  ],
  // The Arrow stream itself is fuzzed in fuzz_arrow_test.ts.
  [
    "save_to_disk folders: state.json and dataset_dict.json damaged",
    fc.oneof(
      damagedJsonFile(STATE, 2).map((state) => saveToDisk({ state })),
      damagedJsonFile(DICT).map((dict) => saveToDisk({ dict })),
    ),
    30,
    SAVE_TO_DISK_NAMES,
  ],
];

fuzzTests(
  "fuzz datasets",
  CASES.map(([what, cases, runs, names = NAMES]) =>
    fuzzStep(what, { module: TARGETS, target: "datasetRows", cases, request: (c) => c, names, runs })
  ),
);
