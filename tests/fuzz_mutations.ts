/**
 * fast-check arbitraries that damage real files: byte-level mutations (bit flips, bytes set to delimiters, invalid
 * UTF-8 inserted, truncation, cut-outs), JSON-level mutations (a value replaced by a wrong type, a boundary number,
 * a huge or deeply nested value; a key removed or added), and the values and strings such damage draws from.
 */
import fc from "fast-check";

const encoder = new TextEncoder();

/** Numbers at the edges of integer types and sizes, and non-integers. */
export const EDGE_NUMBERS: readonly number[] = [
  0,
  -0,
  1,
  -1,
  0.5,
  -0.5,
  1e-300,
  255,
  256,
  65_535,
  65_536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 60,
  1e15,
  1e21,
  1e300,
  -(2 ** 31),
  -(2 ** 53),
  Number.MAX_VALUE,
];

/** Strings parsers look up or compare: dtypes, names on Object.prototype, empty and odd ones. */
export const EDGE_STRINGS: readonly string[] = [
  "",
  " ",
  "F32",
  "F16",
  "BF16",
  "I64",
  "U8",
  "F8_E4M3",
  "f32",
  "toString",
  "__proto__",
  "constructor",
  "hasOwnProperty",
  "valueOf",
  "null",
  "NaN",
  "Infinity",
  "-Infinity",
  "1e999",
  "../../etc/passwd",
  "a/b",
  "\u0000",
  "\ud800",
  "{{",
  "{%",
  "(a+)+$",
];

/** Byte sequences that are not UTF-8 (a lone continuation, overlong, surrogate, truncated) and a BOM. */
export const INVALID_UTF8: readonly number[][] = [
  [0xff],
  [0x80],
  [0xc3, 0x28],
  [0xc0, 0xaf],
  [0xe2, 0x28, 0xa1],
  [0xed, 0xa0, 0x80],
  [0xf0, 0x90, 0x28, 0xbc],
  [0xf4, 0x90, 0x80, 0x80],
  [0xef, 0xbb, 0xbf],
];

/** Bytes that delimit or terminate the formats under test. */
const DELIMITERS = [0x00, 0x0a, 0x0d, 0x20, 0x22, 0x2c, 0x3a, 0x5b, 0x5c, 0x5d, 0x7b, 0x7d, 0x7f, 0x80, 0xff];

// ---- byte mutations ----

type ByteMutation =
  | { op: "flip"; at: number; bit: number }
  | { op: "set"; at: number; byte: number }
  | { op: "insert"; at: number; bytes: number[] }
  | { op: "cut"; at: number; length: number }
  | { op: "truncate"; at: number };

function byteMutation(maxAt: number): fc.Arbitrary<ByteMutation> {
  const at = fc.nat({ max: Math.max(0, maxAt) });
  return fc.oneof(
    fc.record({ op: fc.constant("flip" as const), at, bit: fc.nat({ max: 7 }) }),
    fc.record({
      op: fc.constant("set" as const),
      at,
      byte: fc.oneof(fc.constantFrom(...DELIMITERS), fc.nat(255)),
    }),
    fc.record({
      op: fc.constant("insert" as const),
      at,
      bytes: fc.oneof(
        fc.constantFrom(...INVALID_UTF8),
        fc.array(fc.nat(255), { minLength: 1, maxLength: 16 }),
      ),
    }),
    fc.record({ op: fc.constant("cut" as const), at, length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({ op: fc.constant("truncate" as const), at }),
  );
}

function applyByteMutation(b: Uint8Array, m: ByteMutation): Uint8Array {
  const at = b.length === 0 ? 0 : m.at % (m.op === "insert" || m.op === "truncate" ? b.length + 1 : b.length);
  switch (m.op) {
    case "flip":
    case "set": {
      if (b.length === 0) return b;
      const out = b.slice();
      out[at] = m.op === "flip" ? out[at] ^ (1 << m.bit) : m.byte;
      return out;
    }
    case "insert":
      return concatBytes(b.subarray(0, at), Uint8Array.from(m.bytes), b.subarray(at));
    case "cut":
      return concatBytes(b.subarray(0, at), b.subarray(at + m.length));
    case "truncate":
      return b.slice(0, at);
  }
}

/** `bytes` with one to four byte-level mutations. */
export function mutatedBytes(bytes: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.array(byteMutation(bytes.length), { minLength: 1, maxLength: 4 })
    .map((ms) => ms.reduce(applyByteMutation, bytes));
}

/** The concatenation of byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---- JSON values ----

/** A placeholder for a value too deep for fast-check to print or shrink: expanded in `jsonText`. */
const DEEP = "\u0000deep:";

/** A value nested `depth` levels deep (arrays or objects), as a placeholder that `jsonText` expands. */
export function deepValue(depth: number, kind: "array" | "object"): string {
  return `${DEEP}${kind}:${depth}`;
}

function deepText(kind: string, depth: number): string {
  return kind === "array"
    ? "[".repeat(depth) + "]".repeat(depth)
    : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

/** JSON text of a value, with the deep-nesting placeholders of `deepValue` expanded. */
export function jsonText(v: unknown, indent?: number): string {
  return JSON.stringify(v, null, indent).replace(
    /"\\u0000deep:(array|object):(\d+)"/g,
    (_, kind: string, depth: string) => deepText(kind, Number(depth)),
  );
}

/** Values that break validation: edge numbers and strings, wrong types, huge and deeply nested values. */
export function edgeValue(): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...EDGE_NUMBERS) },
    { weight: 4, arbitrary: fc.constantFrom(...EDGE_STRINGS) },
    { weight: 4, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], [-1], [2 ** 53, 2 ** 53]) },
    { weight: 2, arbitrary: fc.integer() },
    { weight: 2, arbitrary: fc.double() },
    { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.constantFrom(deepValue(2_000, "array"), deepValue(2_000, "object")) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        deepValue(100_000, "array"),
        deepValue(100_000, "object"),
        "x".repeat(100_000),
      ),
    },
  );
}

/** Keys worth adding to an object: names on Object.prototype, empty, random. */
export function edgeKey(): fc.Arbitrary<string> {
  return fc.oneof(fc.constantFrom(...EDGE_STRINGS), fc.string({ maxLength: 12 }));
}

type Path = (string | number)[];

/** Every path into a JSON value (the root first), at most `limit` of them. */
function jsonPaths(v: unknown, limit = 4_000): Path[] {
  const out: Path[] = [];
  const walk = (x: unknown, p: Path) => {
    if (out.length >= limit) return;
    out.push(p);
    if (Array.isArray(x)) x.forEach((y, i) => walk(y, [...p, i]));
    else if (x !== null && typeof x === "object") {
      for (const [k, y] of Object.entries(x)) {
        walk(y, [...p, k]);
      }
    }
  };
  walk(v, []);
  return out;
}

type JsonMutation =
  | { op: "replace"; path: number; value: unknown }
  | { op: "remove"; path: number }
  | { op: "add"; path: number; key: string; value: unknown };

const isObject = (x: unknown): x is Record<string | number, unknown> => x !== null && typeof x === "object";

/** The value at `path`, or undefined where an earlier mutation removed or replaced a step of it. */
function valueAt(root: unknown, path: Path): unknown {
  let v = root;
  for (const k of path) v = isObject(v) ? v[k] : undefined;
  return v;
}

function applyJsonMutation(root: unknown, paths: Path[], m: JsonMutation): unknown {
  const path = paths[m.path];
  // a copy: fast-check hands out the same constant ({}, []) to several mutations and cases
  const value = m.op === "remove" ? undefined : structuredClone(m.value);
  if (m.op === "add") {
    const target = valueAt(root, path);
    if (isObject(target) && !Array.isArray(target)) {
      Object.defineProperty(target, m.key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return root;
  }
  if (path.length === 0) return m.op === "replace" ? value : root;
  const parent = valueAt(root, path.slice(0, -1));
  const last = path[path.length - 1];
  if (!isObject(parent)) return root;
  if (m.op === "replace") parent[last] = value;
  else if (Array.isArray(parent)) parent.splice(last as number, 1);
  else delete parent[last];
  return root;
}

/** A JSON value with one to three mutations (values replaced, keys removed or added). */
export function mutatedJson(original: unknown): fc.Arbitrary<unknown> {
  const paths = jsonPaths(original);
  const path = fc.nat({ max: paths.length - 1 });
  const mutation: fc.Arbitrary<JsonMutation> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ op: fc.constant("replace" as const), path, value: edgeValue() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("remove" as const), path }) },
    {
      weight: 1,
      arbitrary: fc.record({ op: fc.constant("add" as const), path, key: edgeKey(), value: edgeValue() }),
    },
  );
  return fc.array(mutation, { minLength: 1, maxLength: 3 })
    .map((ms) => ms.reduce((v, m) => applyJsonMutation(v, paths, m), structuredClone(original)));
}

/**
 * The bytes of a damaged JSON file made from `original` (a parsed real file): JSON mutations, byte mutations of
 * its text, or both.
 */
export function damagedJsonFile(original: unknown, indent?: number): fc.Arbitrary<Uint8Array> {
  const text = encoder.encode(jsonText(original, indent));
  const mutated = mutatedJson(original).map((v) => encoder.encode(jsonText(v, indent)));
  return fc.oneof(
    { weight: 3, arbitrary: mutated },
    { weight: 2, arbitrary: mutatedBytes(text) },
    { weight: 1, arbitrary: mutated.chain(mutatedBytes) },
  );
}

/** UTF-8 bytes of a JSON value (placeholders expanded). */
export function jsonBytes(v: unknown, indent?: number): Uint8Array {
  return encoder.encode(jsonText(v, indent));
}
