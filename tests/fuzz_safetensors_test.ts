/**
 * Fuzzes the safetensors reader (header, offsets, tensor data) and the shard index: damaged real checkpoints,
 * rebuilt headers with inflated lengths, offsets, wrong dtypes and huge shapes, and generated files.
 */
import fc from "fast-check";
import { fuzzStep, fuzzTests } from "./fuzz_util.ts";
import {
  concatBytes,
  damagedJsonFile,
  EDGE_NUMBERS,
  jsonBytes,
  mutatedBytes,
  mutatedJson,
} from "./fuzz_mutations.ts";

const FIX = new URL("./fixtures/", import.meta.url);
const TARGETS = new URL("./fuzz_targets/safetensors.ts", import.meta.url);
const REAL = await Deno.readFile(new URL("tiny-gpt2-transformers/model.safetensors", FIX));
const HEADER_LENGTH = Number(new DataView(REAL.buffer).getBigUint64(0, true));
const HEADER = JSON.parse(new TextDecoder().decode(REAL.subarray(8, 8 + HEADER_LENGTH)));
const DATA = REAL.subarray(8 + HEADER_LENGTH);

/** A safetensors file: the 8-byte length field, the header bytes, the data. */
function safetensors(header: Uint8Array, data: Uint8Array, lengthField = BigInt(header.length)): Uint8Array {
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt.asUintN(64, lengthField), true);
  return concatBytes(len, header, data);
}

/** The length field: the true one, off by a little, or a huge claim. */
function lengthField(trueLength: number): fc.Arbitrary<bigint> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant(BigInt(trueLength)) },
    { weight: 2, arbitrary: fc.integer({ min: -16, max: 16 }).map((d) => BigInt(trueLength + d)) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        2n ** 32n,
        2n ** 53n,
        2n ** 60n,
        2n ** 63n,
        2n ** 64n - 1n,
        100n * 2n ** 20n + 1n,
        100n * 2n ** 30n,
      ),
    },
  );
}

/** The data section: as it is, truncated, or extended. */
function dataSection(data: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant(data) },
    { weight: 1, arbitrary: fc.nat({ max: data.length }).map((n) => data.subarray(0, n)) },
    { weight: 1, arbitrary: fc.nat({ max: 64 }).map((n) => concatBytes(data, new Uint8Array(n))) },
  );
}

/** The real file with its header region (length field and JSON) damaged byte by byte. */
const damagedHeaderRegion = mutatedBytes(REAL.subarray(0, 8 + HEADER_LENGTH))
  .map((head) => concatBytes(head, DATA));

/** The real file cut anywhere. */
const truncated = fc.nat({ max: REAL.length }).map((n) => REAL.subarray(0, n));

/** The real header with JSON-level damage (offsets, dtypes, shapes), any length field, any data section. */
const rebuiltHeader = fc.tuple(damagedJsonFile(HEADER), dataSection(DATA))
  .chain(([header, data]) => lengthField(header.length).map((n) => safetensors(header, data, n)));

const DTYPES = [
  "F32",
  "F16",
  "BF16",
  "F64",
  "I64",
  "I32",
  "I8",
  "U8",
  "BOOL",
  "F8_E4M3",
  "U64",
  "toString",
  "x",
];

/** A generated header of a few tensors whose data section is `dataBytes` long. */
const generated = fc.record({
  tensors: fc.dictionary(
    fc.string({ maxLength: 8 }),
    fc.record({
      dtype: fc.constantFrom(...DTYPES),
      shape: fc.array(fc.oneof(fc.nat(8), fc.constantFrom(...EDGE_NUMBERS)), { maxLength: 4 }),
      data_offsets: fc.tuple(
        fc.oneof(fc.nat(64), fc.constantFrom(...EDGE_NUMBERS)),
        fc.oneof(fc.nat(64), fc.constantFrom(...EDGE_NUMBERS)),
      ),
    }),
    { maxKeys: 4 },
  ),
  dataBytes: fc.nat(128),
  metadata: fc.option(
    fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  ),
}).map(({ tensors, dataBytes, metadata }) => {
  const header = metadata === null ? tensors : { __metadata__: metadata, ...tensors };
  return safetensors(jsonBytes(header), new Uint8Array(dataBytes));
});

/** The header JSON of the real file with its tensors' fields replaced, rebuilt with the true length. */
const fieldDamage = mutatedJson(HEADER).map((h) => safetensors(jsonBytes(h), DATA));

/** A property of model.safetensors. */
const safetensorsFile = (what: string, cases: fc.Arbitrary<Uint8Array>, runs: number) =>
  fuzzStep(what, {
    module: TARGETS,
    target: "safetensorsFile",
    cases,
    request: (bytes) => ({ files: { "model.safetensors": bytes } }),
    names: /model\.safetensors: /,
    runs,
  });

const INDEX = {
  metadata: { total_size: 9872 },
  weight_map: {
    "h.0.attn.c_attn.bias": "model-00001-of-00002.safetensors",
    "wte.weight": "model-00002-of-00002.safetensors",
  },
};

fuzzTests("fuzz safetensors", [
  safetensorsFile("the real file with its header bytes damaged", damagedHeaderRegion, 50),
  safetensorsFile("the real file truncated", truncated, 20),
  safetensorsFile("the real header damaged as JSON, any length field and data", rebuiltHeader, 50),
  safetensorsFile("the real header with fields replaced", fieldDamage, 40),
  safetensorsFile("generated headers", generated, 50),
  fuzzStep("the shard index damaged", {
    module: TARGETS,
    target: "shardIndex",
    cases: fc.oneof(damagedJsonFile(INDEX, 2), fc.jsonValue().map((v) => jsonBytes(v))),
    request: (bytes) => ({ files: { "model.safetensors.index.json": bytes } }),
    names: /model\.safetensors\.index\.json: /,
    runs: 50,
  }),
]);
