/**
 * Named dispatch parameters, laid out from the kernel's own WGSL.
 *
 * A kernel's scalars live in `@group(0) @binding(0) var<uniform> p: Params`. A dispatch names them:
 *
 *   dispatch({ kernel: MATMUL, params: { M, N, K, alpha }, … })   ↔   struct Params { M: u32, N: u32, K: u32, alpha: f32 }
 *
 * The layout (each field's byte offset and kind, by WGSL's uniform-buffer alignment and size rules) is parsed once
 * per kernel source and entry point (`paramLayout`), and `encodeParams` writes a dispatch's values into it with
 * checks: a name the struct does not declare, a field the entry point reads but the dispatch leaves out, or a
 * value of the wrong kind (a fraction or negative for u32, a string, an array of the wrong length) is a
 * KernelError naming the kernel, the entry point and the field. A field the entry point never reads may be left
 * out and is written as zero; `true`/`false` are accepted for integer fields as 1/0.
 *
 * Supported field types: u32, i32, f32, their vectors (vec2–vec4, `vec4f` or `vec4<f32>` spelling) and
 * fixed-size arrays of those (`array<vec4f, 4>`; a vector or array value is given flat, without the padding:
 * 16 numbers for `array<vec4f, 4>`). `@align(n)` and `@size(n)` are honoured. A kernel with several uniform
 * structs at binding 0 (permute.wgsl's `Params` and `RunParams`) gets, for each entry point, the one that entry
 * point (and the functions it calls) reads.
 */
import { KernelError } from "./errors.ts";

/** A field's value: a number (or boolean for u32/i32), or the flat components of a vector or array field. */
export type ParamValue = number | boolean | ArrayLike<number>;
/** A dispatch's parameters by field name. */
export type ParamValues = Readonly<Record<string, ParamValue>>;

export type ScalarKind = "u32" | "i32" | "f32";

/** One field of a uniform struct as the host writes it. */
export interface ParamField {
  readonly name: string;
  readonly kind: ScalarKind;
  /** Byte offset of the first component. */
  readonly offset: number;
  /** Components per element (1 for a scalar, n for vecn). */
  readonly lanes: number;
  /** Elements (1 unless the field is an array). */
  readonly elems: number;
  /** Bytes from one array element to the next. */
  readonly stride: number;
  /** Whether the entry point reads the field (then the dispatch must give it). */
  readonly required: boolean;
  /** The field's WGSL type, as written (for messages). */
  readonly type: string;
}

/** The parameter layout one entry point of one kernel reads at binding 0. */
export interface ParamLayout {
  /** `kernel.wgsl:entry` (for messages). */
  readonly name: string;
  /** The struct's WGSL name ("" when the entry point reads no uniform). */
  readonly struct: string;
  readonly fields: readonly ParamField[];
  /** The struct's size in bytes (WGSL SizeOf, rounded to 16 for a uniform buffer). */
  readonly size: number;
  /** Field by name. */
  readonly byName: ReadonlyMap<string, ParamField>;
}

// ---------------------------------------------------------------------------------------------------------------
// WGSL source analysis (once per kernel source)

interface StructField {
  name: string;
  type: string;
  align?: number;
  size?: number;
}

/** What params layouts need from a WGSL source: structs, uniforms at binding 0, and function bodies' reads. */
export interface WgslParamsInfo {
  structs: Map<string, StructField[]>;
  /** `var<uniform>` declarations at group 0, binding 0: variable name → struct name. */
  uniforms: Map<string, string>;
  functions: Map<string, FunctionReads>;
}

interface FunctionReads {
  /** Functions it calls (names of module functions it mentions). */
  calls: Set<string>;
  /** Uniform variable → fields read (null: the whole struct). */
  reads: Map<string, Set<string> | null>;
}

/** The source without comments (`//` lines and nestable block comments), each comment replaced by a space. */
export function stripWgslComments(src: string): string {
  let out = "";
  let i = 0;
  while (i < src.length) {
    const c = src[i], d = src[i + 1];
    if (c === "/" && d === "/") {
      while (i < src.length && src[i] !== "\n") i++;
      out += " ";
    } else if (c === "/" && d === "*") {
      let depth = 1;
      i += 2;
      while (i < src.length && depth > 0) {
        if (src[i] === "/" && src[i + 1] === "*") depth++, i += 2;
        else if (src[i] === "*" && src[i + 1] === "/") depth--, i += 2;
        else i++;
      }
      out += " ";
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Splits at commas outside `<…>` and `(…)`. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0, start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "<" || c === "(") depth++;
    else if (c === ">" || c === ")") depth--;
    else if (c === "," && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

const IDENT = /\b[A-Za-z_][A-Za-z0-9_]*\b/g;

/** Parses the parts of a WGSL source that parameter layouts need. Throws a KernelError on what it cannot read. */
export function parseWgslParams(kernel: string, source: string): WgslParamsInfo {
  const src = stripWgslComments(source);
  const structs = new Map<string, StructField[]>();
  for (const m of src.matchAll(/\bstruct\s+([A-Za-z_]\w*)\s*\{([^}]*)\}/g)) {
    const fields: StructField[] = [];
    for (const part of splitTopLevel(m[2])) {
      const f = /^((?:@\w+\s*(?:\([^)]*\))?\s*)*)([A-Za-z_]\w*)\s*:\s*(.+)$/s.exec(part);
      if (!f) throw new KernelError(kernel, `cannot read the member "${part}" of struct ${m[1]}`);
      const field: StructField = { name: f[2], type: f[3].replace(/\s+/g, "") };
      for (const a of f[1].matchAll(/@(\w+)\s*(?:\(([^)]*)\))?/g)) {
        const n = Number(String(a[2] ?? "").trim().replace(/[iu]$/, ""));
        if (a[1] === "align") field.align = n;
        else if (a[1] === "size") field.size = n;
        else throw new KernelError(kernel, `struct ${m[1]}.${f[2]}: unsupported attribute @${a[1]}`);
        if (!Number.isInteger(n) || n <= 0) {
          throw new KernelError(kernel, `struct ${m[1]}.${f[2]}: @${a[1]} needs a positive integer literal`);
        }
      }
      fields.push(field);
    }
    structs.set(m[1], fields);
  }
  const uniforms = new Map<string, string>();
  const decl =
    /@group\(\s*(\d+)\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var\s*<\s*uniform\s*>\s*([A-Za-z_]\w*)\s*:\s*([A-Za-z_]\w*)/g;
  for (const m of src.matchAll(decl)) {
    if (m[1] === "0" && m[2] === "0") uniforms.set(m[3], m[4]);
  }
  const functions = new Map<string, FunctionReads>();
  const bodies = new Map<string, string>();
  for (const m of src.matchAll(/\bfn\s+([A-Za-z_]\w*)\s*\(/g)) {
    const open = src.indexOf("{", m.index! + m[0].length);
    if (open < 0) continue;
    let depth = 0, end = open;
    for (; end < src.length; end++) {
      if (src[end] === "{") depth++;
      else if (src[end] === "}" && --depth === 0) break;
    }
    bodies.set(m[1], src.slice(open + 1, end));
  }
  for (const [name, body] of bodies) {
    const calls = new Set<string>();
    const reads = new Map<string, Set<string> | null>();
    for (const m of body.matchAll(IDENT)) {
      const id = m[0];
      const at = m.index!;
      if (/\.\s*$/.test(body.slice(Math.max(0, at - 8), at))) continue; // a member, not a module name
      if (bodies.has(id) && id !== name) calls.add(id);
      if (!uniforms.has(id)) continue;
      const member = /^\s*\.\s*([A-Za-z_]\w*)/.exec(body.slice(at + id.length, at + id.length + 80));
      const seen = reads.get(id);
      if (!member) reads.set(id, null); // the whole struct (copied or passed on)
      else if (seen !== null) {
        if (seen) seen.add(member[1]);
        else reads.set(id, new Set([member[1]]));
      }
    }
    functions.set(name, { calls, reads });
  }
  return { structs, uniforms, functions };
}

// ---------------------------------------------------------------------------------------------------------------
// Layout by WGSL's rules for the uniform address space

interface TypeLayout {
  kind: ScalarKind;
  lanes: number;
  elems: number;
  stride: number;
  align: number;
  size: number;
}

/** The bytes of one dispatch's parameter slot (src/gpu/queue.ts binds 256-byte slots of a uniform arena). */
export const MAX_PARAMS_BYTES = 256;

const roundUp = (k: number, n: number) => Math.ceil(n / k) * k;

function scalarOrVector(t: string): { kind: ScalarKind; lanes: number } | null {
  if (t === "u32" || t === "i32" || t === "f32") return { kind: t, lanes: 1 };
  let m = /^vec([234])([uif])$/.exec(t);
  if (m) return { kind: `${m[2]}32` as ScalarKind, lanes: Number(m[1]) };
  m = /^vec([234])<(u32|i32|f32)>$/.exec(t);
  if (m) return { kind: m[2] as ScalarKind, lanes: Number(m[1]) };
  return null;
}

function typeLayout(t: string, where: () => string): TypeLayout {
  const sv = scalarOrVector(t);
  if (sv) {
    const size = 4 * sv.lanes;
    const align = sv.lanes === 1 ? 4 : sv.lanes === 2 ? 8 : 16;
    return { ...sv, elems: 1, stride: size, align, size };
  }
  const arr = /^array<(.+),([0-9]+)[iu]?>$/.exec(t);
  if (arr) {
    const e = scalarOrVector(arr[1]);
    if (!e) throw new KernelError(where(), `array elements of type ${arr[1]} are not supported in Params`);
    const eAlign = e.lanes === 1 ? 4 : e.lanes === 2 ? 8 : 16;
    const stride = roundUp(eAlign, 4 * e.lanes);
    if (stride % 16 !== 0) {
      throw new KernelError(
        where(),
        `${t} has a ${stride}-byte stride; a uniform buffer needs a multiple of 16`,
      );
    }
    const elems = Number(arr[2]);
    return { ...e, elems, stride, align: roundUp(16, eAlign), size: elems * stride };
  }
  throw new KernelError(
    where(),
    `type ${t} is not supported in Params (u32, i32, f32, vec2–vec4 of them, and arrays of those with a literal size)`,
  );
}

function resolveUniform(
  kernel: string,
  entry: string,
  info: WgslParamsInfo,
): [string, Set<string> | null] | null {
  if (!info.functions.has(entry)) {
    throw new KernelError(`${kernel}:${entry}`, `the WGSL source has no function named ${entry}`);
  }
  const reads = new Map<string, Set<string> | null>();
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length) {
    const fn = todo.pop()!;
    if (seen.has(fn)) continue;
    seen.add(fn);
    const f = info.functions.get(fn)!;
    for (const c of f.calls) todo.push(c);
    for (const [v, fields] of f.reads) {
      const prev = reads.get(v);
      if (fields === null || prev === null) reads.set(v, null);
      else reads.set(v, new Set([...(prev ?? []), ...fields]));
    }
  }
  if (reads.size > 1) {
    throw new KernelError(
      `${kernel}:${entry}`,
      `the entry point reads several uniforms at binding 0 (${
        [...reads.keys()].join(", ")
      }); it may read one`,
    );
  }
  if (reads.size === 1) {
    const [[v, fields]] = reads;
    return [v, fields];
  }
  if (info.uniforms.size === 1) return [[...info.uniforms.keys()][0], new Set()];
  return null;
}

/** The parameter layout of `entry` in a kernel source, from its parsed `info`. */
export function layoutFor(kernel: string, entry: string, info: WgslParamsInfo): ParamLayout {
  const name = `${kernel}:${entry}`;
  const uniform = resolveUniform(kernel, entry, info);
  if (!uniform) return { name, struct: "", fields: [], size: 0, byName: new Map() };
  const [v, read] = uniform;
  const struct = info.uniforms.get(v)!;
  const members = info.structs.get(struct);
  if (!members) {
    throw new KernelError(name, `the uniform ${v} has type ${struct}, which is not a struct here`);
  }
  const fields: ParamField[] = [];
  let offset = 0, maxAlign = 16;
  for (const m of members) {
    const t = typeLayout(m.type, () => `${name} (${struct}.${m.name})`);
    const align = m.align ?? t.align;
    const size = m.size ?? t.size;
    offset = roundUp(align, offset);
    maxAlign = Math.max(maxAlign, align);
    fields.push({
      name: m.name,
      kind: t.kind,
      offset,
      lanes: t.lanes,
      elems: t.elems,
      stride: t.stride,
      required: read === null || read.has(m.name),
      type: m.type,
    });
    offset += size;
  }
  const size = roundUp(maxAlign, offset);
  if (size > MAX_PARAMS_BYTES) {
    throw new KernelError(
      name,
      `${struct} is ${size} bytes; a dispatch's parameters hold at most ${MAX_PARAMS_BYTES}`,
    );
  }
  if (read) {
    for (const f of read) {
      if (!fields.some((x) => x.name === f)) {
        throw new KernelError(name, `reads ${v}.${f}, not a member of ${struct}`);
      }
    }
  }
  return { name, struct, fields, size, byName: new Map(fields.map((f) => [f.name, f])) };
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding (per dispatch: no parsing, no allocation)

function bad(layout: ParamLayout, field: string, detail: string): KernelError {
  return new KernelError(layout.name, `params.${field}: ${detail}`);
}

function show(v: unknown): string {
  return typeof v === "string"
    ? JSON.stringify(v)
    : typeof v === "object" && v !== null
    ? "an object"
    : String(v);
}

function writeScalar(layout: ParamLayout, f: ParamField, v: unknown, view: DataView, at: number): void {
  if (typeof v === "boolean" && f.kind !== "f32") v = v ? 1 : 0;
  if (typeof v !== "number") throw bad(layout, f.name, `expected a number (${f.kind}), got ${show(v)}`);
  if (f.kind === "u32") {
    if (v >>> 0 !== v) throw bad(layout, f.name, `${v} is not a u32 (an integer in [0, 4294967295])`);
    view.setUint32(at, v, true);
  } else if (f.kind === "i32") {
    if ((v | 0) !== v) {
      throw bad(layout, f.name, `${v} is not an i32 (an integer in [-2147483648, 2147483647])`);
    }
    view.setInt32(at, v, true);
  } else view.setFloat32(at, v, true);
}

/**
 * Writes `values` into `view` at `byteOffset` by `layout` (the struct's `layout.size` bytes; fields left out are
 * zero), checking every name and value.
 */
export function encodeParams(
  layout: ParamLayout,
  values: ParamValues,
  view: DataView,
  byteOffset: number,
): void {
  const fields = layout.fields;
  let given = 0;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const v = values[f.name];
    const at = byteOffset + f.offset;
    if (v === undefined) {
      if (f.required) {
        throw bad(
          layout,
          f.name,
          `missing (${layout.struct} declares ${f.name}: ${f.type} and the entry point reads it)`,
        );
      }
      for (let e = 0; e < f.elems; e++) {
        for (let l = 0; l < f.lanes; l++) view.setUint32(at + e * f.stride + 4 * l, 0, true);
      }
      continue;
    }
    given++;
    if (f.lanes === 1 && f.elems === 1) {
      writeScalar(layout, f, v, view, at);
      continue;
    }
    const n = f.lanes * f.elems;
    if (typeof v !== "object" || v === null || (v as ArrayLike<number>).length !== n) {
      throw bad(layout, f.name, `expected ${n} numbers for ${f.type}, got ${show(v)}`);
    }
    const arr = v as ArrayLike<number>;
    for (let e = 0; e < f.elems; e++) {
      for (let l = 0; l < f.lanes; l++) {
        writeScalar(layout, f, arr[e * f.lanes + l], view, at + e * f.stride + 4 * l);
      }
    }
  }
  let keys = 0;
  for (const _ in values) keys++;
  if (keys !== given) {
    for (const k in values) {
      if (!layout.byName.has(k)) {
        const names = layout.fields.map((f) => f.name).join(", ");
        throw bad(
          layout,
          k,
          layout.struct
            ? `${layout.struct} declares no field ${k} (its fields: ${names})`
            : "the entry point reads no uniform Params",
        );
      }
    }
  }
}

/** `values` packed by `layout` into a new buffer of the struct's size (at least 16 bytes), for a uniform of one's own. */
export function packParams(layout: ParamLayout, values: ParamValues): Uint8Array {
  const bytes = new Uint8Array(Math.max(16, layout.size));
  encodeParams(layout, values, new DataView(bytes.buffer), 0);
  return bytes;
}
