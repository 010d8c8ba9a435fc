/** Named dispatch parameters: layouts parsed from each kernel's WGSL `struct Params`, and the checks per dispatch. */
import assert from "node:assert/strict";
import {
  dispatch,
  full,
  inlineKernel,
  KernelError,
  type ParamLayout,
  type ParamValues,
  zeros,
} from "../mod.ts";
import { compileKernel, loadKernelSource } from "../src/gpu/kernel.ts";
import { encodeParams, layoutFor, parseWgslParams, stripWgslComments } from "../src/gpu/params.ts";
import { gpuTest, setup, values } from "./util.ts";

const KERNELS = new URL("../kernels/", import.meta.url);

function layoutOf(src: string, entry = "main", name = "test.wgsl"): ParamLayout {
  return layoutFor(name, entry, parseWgslParams(name, src));
}

function encode(layout: ParamLayout, v: ParamValues): DataView {
  const view = new DataView(new ArrayBuffer(Math.max(16, layout.size)));
  encodeParams(layout, v, view, 0);
  return view;
}

function entryPoints(src: string): string[] {
  return [...stripWgslComments(src).matchAll(/@compute[^;{]*?\bfn\s+([A-Za-z_]\w*)/g)].map((m) => m[1]);
}

const MATMUL_LIKE = `
struct Params { M: u32, N: u32, K: u32, alpha: f32, shift: i32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
fn helper() -> f32 { return p.alpha * f32(p.shift); }
@compute @workgroup_size(1) fn main() { out[0] = f32(p.M + p.N + p.K) + helper(); }
@compute @workgroup_size(1) fn small() { out[0] = f32(p.M); }
`;

/** Asserts that `fn` throws a KernelError whose message matches every pattern. */
function throwsKernelError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof KernelError, `expected a KernelError, got ${e}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

Deno.test("every kernel file's Params parses, for every entry point", async () => {
  let files = 0, entries = 0;
  for await (const f of Deno.readDir(KERNELS)) {
    if (!f.name.endsWith(".wgsl")) continue;
    const src = (await loadKernelSource(f.name, KERNELS)).code; // with the shared files it requires
    const info = parseWgslParams(f.name, src);
    assert.ok(info.uniforms.size >= 1, `${f.name}: no var<uniform> at binding 0`);
    const eps = entryPoints(src);
    assert.ok(eps.length > 0, `${f.name}: no @compute entry point found`);
    for (const e of eps) {
      const l = layoutFor(f.name, e, info);
      assert.ok(l.fields.length > 0, `${f.name}:${e} has no parameter fields`);
      assert.ok(l.size % 16 === 0 && l.size <= 256, `${f.name}:${e}: size ${l.size}`);
      entries++;
    }
    files++;
  }
  assert.ok(files >= 40, `only ${files} kernel files`);
  assert.ok(entries >= files);
});

Deno.test("kernels that share a Params layout parse to the same one", async () => {
  const read = async (f: string) => parseWgslParams(f, (await loadKernelSource(f, KERNELS)).code);
  const strip = (l: ParamLayout) => l.fields.map(({ name, kind, offset }) => ({ name, kind, offset }));
  const register = layoutFor("matmul_register.wgsl", "main", await read("matmul_register.wgsl"));
  const gemv = layoutFor("matmul_gemv.wgsl", "main", await read("matmul_gemv.wgsl"));
  assert.deepEqual(strip(gemv), strip(register));
  const fwd = layoutFor("attention_fwd.wgsl", "fwd_rows", await read("attention_fwd.wgsl"));
  const bwd = layoutFor("attention_bwd.wgsl", "dq_rows", await read("attention_bwd.wgsl"));
  assert.deepEqual(strip(bwd), strip(fwd).slice(0, strip(bwd).length));
});

Deno.test("each entry point gets the uniform struct it reads (permute: Params for main, RunParams for runs)", async () => {
  const info = parseWgslParams("permute.wgsl", await Deno.readTextFile(new URL("permute.wgsl", KERNELS)));
  assert.equal(layoutFor("permute.wgsl", "main", info).struct, "Params");
  const runs = layoutFor("permute.wgsl", "runs", info);
  assert.equal(runs.struct, "RunParams");
  assert.deepEqual(runs.fields.slice(0, 4).map((f) => f.name), ["rows", "chunks", "run", "inner"]);
});

Deno.test("uniform layout: vectors, arrays of vectors, @align and @size follow WGSL's rules", () => {
  const l = layoutOf(`
struct Params {
  a: u32,
  v: vec3f,          // align 16 → offset 16, size 12
  b: f32,            // packs after v at 28
  w: array<vec4<f32>, 2>, // align 16 → 32, 32 bytes
  c: vec2<i32>,      // align 8 → 64
  @align(16) d: u32, // → 80
  @size(8) e: f32,   // 84, takes 8
  f: u32,            // → 92
}
@group(0) @binding(0) var<uniform> p: Params;
@compute @workgroup_size(1) fn main() { _ = p.a; }`);
  const at = Object.fromEntries(l.fields.map((f) => [f.name, f.offset]));
  assert.deepEqual(at, { a: 0, v: 16, b: 28, w: 32, c: 64, d: 80, e: 84, f: 92 });
  assert.equal(l.size, 96);
  const view = encode(l, {
    a: 1,
    v: [1.5, 2.5, 3.5],
    b: -1,
    w: [1, 2, 3, 4, 5, 6, 7, 8],
    c: [-3, 4],
    d: true,
  });
  assert.equal(view.getFloat32(24, true), 3.5);
  assert.equal(view.getFloat32(32 + 16 + 12, true), 8);
  assert.equal(view.getInt32(64, true), -3);
  assert.equal(view.getUint32(80, true), 1);
  assert.equal(view.getUint32(92, true), 0); // left out, not read: zero
  // the DPO loss weights: array<vec4f, 4> first, then the scalars from byte 64
  const dpo = parseWgslParams("dpo_loss.wgsl", Deno.readTextFileSync(new URL("dpo_loss.wgsl", KERNELS)));
  const fwd = layoutFor("dpo_loss.wgsl", "forward", dpo);
  assert.equal(fwd.byName.get("B")!.offset, 64);
  assert.equal(fwd.byName.get("rpo")!.offset, 96);
  assert.equal(fwd.size, 112);
});

Deno.test("a name the struct does not declare is an error naming the kernel, entry point and field", () => {
  const l = layoutOf(MATMUL_LIKE, "main", "mm_test.wgsl");
  throwsKernelError(
    () => encode(l, { M: 1, N: 2, K: 3, alpha: 1, shift: 0, Kk: 4 }),
    /kernel mm_test\.wgsl:main/,
    /params\.Kk/,
    /Params declares no field Kk/,
    /M, N, K, alpha, shift/,
  );
});

Deno.test("a field the entry point reads is required; one it never reads may be left out (as zero)", () => {
  const l = layoutOf(MATMUL_LIKE, "main", "mm_test.wgsl");
  throwsKernelError(
    () => encode(l, { M: 1, N: 2, alpha: 1, shift: 0 }),
    /mm_test\.wgsl:main/,
    /params\.K: missing/,
  );
  // read through a helper function called by the entry point
  throwsKernelError(() => encode(l, { M: 1, N: 2, K: 3, alpha: 1 }), /params\.shift: missing/);
  // an explicit undefined counts as missing
  throwsKernelError(
    () => encode(l, { M: 1, N: 2, K: undefined as unknown as number, alpha: 1, shift: 0 }),
    /K: missing/,
  );
  const small = layoutOf(MATMUL_LIKE, "small", "mm_test.wgsl");
  const view = new DataView(new ArrayBuffer(32));
  view.setUint32(8, 77, true);
  encodeParams(small, { M: 5 }, view, 0);
  assert.equal(view.getUint32(0, true), 5);
  assert.equal(view.getUint32(8, true), 0, "a left-out field is written as zero, not left stale");
  encodeParams(small, { M: 5, N: undefined as unknown as number }, view, 0);
});

Deno.test("a value of the wrong kind is an error naming the field and its type", () => {
  const l = layoutOf(MATMUL_LIKE, "main", "mm_test.wgsl");
  const ok = { M: 1, N: 2, K: 3, alpha: 0.5, shift: -2 };
  encode(l, ok);
  throwsKernelError(() => encode(l, { ...ok, M: 1.5 }), /mm_test\.wgsl:main/, /params\.M: 1\.5 is not a u32/);
  throwsKernelError(() => encode(l, { ...ok, N: -1 }), /params\.N: -1 is not a u32/);
  throwsKernelError(() => encode(l, { ...ok, K: 2 ** 32 }), /params\.K: 4294967296 is not a u32/);
  throwsKernelError(() => encode(l, { ...ok, K: NaN }), /params\.K: NaN is not a u32/);
  throwsKernelError(() => encode(l, { ...ok, shift: 2 ** 31 }), /params\.shift: 2147483648 is not an i32/);
  throwsKernelError(
    () => encode(l, { ...ok, alpha: "1" as unknown as number }),
    /params\.alpha: expected a number \(f32\), got "1"/,
  );
  throwsKernelError(
    () => encode(l, { ...ok, alpha: true }),
    /params\.alpha: expected a number \(f32\), got true/,
  );
  throwsKernelError(() => encode(l, { ...ok, M: [1] }), /params\.M: expected a number \(u32\)/);
  const arr = layoutOf(`struct Params { w: array<vec4f, 2>, n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@compute @workgroup_size(1) fn main() { _ = p.w[0].x + f32(p.n); }`);
  throwsKernelError(
    () => encode(arr, { w: [1, 2, 3], n: 1 }),
    /params\.w: expected 8 numbers for array<vec4f,2>/,
  );
  throwsKernelError(() => encode(arr, { w: 3, n: 1 }), /params\.w: expected 8 numbers/);
  // booleans are 1/0 for integer fields
  assert.equal(encode(arr, { w: new Float32Array(8), n: true }).getUint32(32, true), 1);
});

Deno.test("what the parser cannot lay out is a KernelError naming the kernel", () => {
  const wrap = (fields: string) =>
    `struct Params { ${fields} }\n@group(0) @binding(0) var<uniform> p: Params;\n` +
    "@compute @workgroup_size(1) fn main() { _ = p; }";
  throwsKernelError(() => layoutOf(wrap("m: mat4x4f")), /test\.wgsl:main/, /type mat4x4f is not supported/);
  throwsKernelError(() => layoutOf(wrap("a: array<f32, 4>")), /16-byte stride|multiple of 16/);
  throwsKernelError(() => layoutOf(wrap("a: array<vec4f, 20>")), /Params is 320 bytes/);
  throwsKernelError(() => layoutOf(wrap("n: u32"), "nope"), /test\.wgsl:nope/, /no function named nope/);
  const two = `struct A { x: u32 }\nstruct B { y: u32 }
@group(0) @binding(0) var<uniform> a: A;
@group(0) @binding(0) var<uniform> b: B;
@compute @workgroup_size(1) fn main() { _ = a.x + b.y; }`;
  throwsKernelError(() => layoutOf(two), /reads several uniforms at binding 0 \(a, b\)/);
});

Deno.test("a dispatch with wrong params throws at once and records nothing", gpuTest, async () => {
  await setup();
  const t = zeros([2]);
  const k = inlineKernel(
    "named_params_test.wgsl",
    `struct Params { n: u32, value: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1) fn main() { for (var i = 0u; i < p.n; i++) { out[i] = p.value; } }`,
  );
  await compileKernel(k);
  const spec = { kernel: k, buffers: [t.binding], workgroups: [1] as const };
  throwsKernelError(
    () => dispatch({ ...spec, params: { n: 2, valu: 3 } }),
    /named_params_test\.wgsl:main/,
    /valu/,
  );
  throwsKernelError(() => dispatch({ ...spec, params: { n: 2 } }), /params\.value: missing/);
  throwsKernelError(() => dispatch({ ...spec }), /params\.n: missing/);
  throwsKernelError(() => dispatch({ ...spec, params: { n: -2, value: 1 } }), /params\.n: -2 is not a u32/);
  assert.deepEqual(await values(t), [0, 0]);
  dispatch({ ...spec, params: { n: 2, value: 3 } });
  assert.deepEqual(await values(t), [3, 3]);
  assert.deepEqual(await values(full([2], 4)), [4, 4]);
});

Deno.test(
  "the parsed layout matches the compiler's: every field read back from the GPU",
  gpuTest,
  async () => {
    await setup();
    const src = `struct Params {
  n: u32,
  v: vec3f,
  b: f32,
  w: array<vec4<f32>, 2>,
  c: vec2<i32>,
  @align(16) d: u32,
  @size(8) e: f32,
  f: i32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1) fn main() {
  out[0] = f32(p.n);
  out[1] = p.v.x; out[2] = p.v.y; out[3] = p.v.z;
  out[4] = p.b;
  for (var i = 0; i < 2; i++) { for (var j = 0; j < 4; j++) { out[5 + 4 * i + j] = p.w[i][j]; } }
  out[13] = f32(p.c.x); out[14] = f32(p.c.y);
  out[15] = f32(p.d); out[16] = p.e; out[17] = f32(p.f);
}`;
    const k = inlineKernel("layout_roundtrip_test.wgsl", src);
    await compileKernel(k);
    const t = zeros([18]);
    dispatch({
      kernel: k,
      params: {
        n: 7,
        v: [1, 2, 3],
        b: 4,
        w: [5, 6, 7, 8, 9, 10, 11, 12],
        c: [-13, 14],
        d: 15,
        e: 16.5,
        f: -17,
      },
      buffers: [t.binding],
      workgroups: [1],
    });
    assert.deepEqual(await values(t), [7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, -13, 14, 15, 16.5, -17]);
  },
);
