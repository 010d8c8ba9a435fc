/** Shared WGSL code: `// requires:` headers, their concatenation, and the errors (src/gpu/includes.ts). */
import assert from "node:assert/strict";
import { dispatch, inlineKernel, KernelError, zeros } from "../mod.ts";
import {
  locateLine,
  moduleScopeNames,
  requiredFiles,
  resolveRequires,
  resolveRequiresAsync,
} from "../src/gpu/includes.ts";
import { compileKernel, loadKernelSource } from "../src/gpu/kernel.ts";
import { layoutFor, parseWgslParams } from "../src/gpu/params.ts";
import { gpuTest, setup, values } from "./util.ts";

const KERNELS = new URL("../kernels/", import.meta.url);

/** Asserts that `fn` throws a KernelError whose message matches every pattern. */
function throwsKernelError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof KernelError, `expected a KernelError, got ${e}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

const lookupIn = (files: Record<string, string>) => (path: string) => files[path];

Deno.test("requires: read from the header comments only, in order, paths checked", () => {
  const src = `// k.wgsl — a kernel
// requires: common/a.wgsl, common/b.wgsl
//   requires:common/c.wgsl
fn main() {}
// requires: common/late.wgsl
`;
  assert.deepEqual(requiredFiles("k.wgsl", src), ["common/a.wgsl", "common/b.wgsl", "common/c.wgsl"]);
  assert.deepEqual(requiredFiles("k.wgsl", "fn f() {}\n"), []);
  throwsKernelError(() => requiredFiles("k.wgsl", "// requires: ../x.wgsl\n"), /k\.wgsl/, /"\.\.\/x\.wgsl"/);
  throwsKernelError(() => requiredFiles("k.wgsl", "// requires: a.wgsl\n"), /common\/<name>\.wgsl/);
});

Deno.test("requires: shared files come first, each once, after what they require", () => {
  const files = {
    "common/a.wgsl": "// requires: common/c.wgsl\nfn a() {}",
    "common/b.wgsl": "// requires: common/a.wgsl, common/c.wgsl\nfn b() {}\n",
    "common/c.wgsl": "fn c() {}\n",
  };
  const src = "// requires: common/b.wgsl, common/a.wgsl\nfn main() { a(); b(); c(); }\n";
  const r = resolveRequires("k.wgsl", src, lookupIn(files));
  assert.deepEqual(r.segments.map((s) => s.file), [
    "common/c.wgsl",
    "common/a.wgsl",
    "common/b.wgsl",
    "k.wgsl",
  ]);
  assert.equal(
    r.code,
    "fn c() {}\n// requires: common/c.wgsl\nfn a() {}\n// requires: common/a.wgsl, common/c.wgsl\nfn b() {}\n" +
      src,
  );
  for (const f of ["fn a()", "fn b()", "fn c()"]) assert.equal(r.code.split(f).length, 2, f);
  // line numbers: every file keeps its lines; locateLine maps back
  assert.deepEqual(r.segments.map((s) => [s.firstLine, s.lines]), [[1, 1], [2, 2], [4, 2], [6, 2]]);
  const lines = r.code.split("\n");
  for (const s of r.segments) {
    assert.equal(locateLine(r.segments, s.firstLine), `${s.file} line 1`);
    assert.equal(
      lines[s.firstLine - 1],
      (s.file === "k.wgsl" ? src : files[s.file as keyof typeof files]).split("\n")[0],
    );
  }
  assert.equal(locateLine(r.segments, 7), "k.wgsl line 2");
  assert.equal(locateLine(r.segments, 99), "line 99");
  // no requires: the source as it is
  assert.deepEqual(resolveRequires("k.wgsl", "fn main() {}\n", lookupIn({})), {
    code: "fn main() {}\n",
    segments: [{ file: "k.wgsl", firstLine: 1, lines: 1 }],
  });
});

Deno.test("requires: a missing file, a cycle and a duplicate declaration name the files", () => {
  /** Resolves k.wgsl, which requires common/a.wgsl (and whatever the source names), against `files`. */
  const fails = (files: Record<string, string>, pattern: RegExp, src = "// requires: common/a.wgsl\n") =>
    throwsKernelError(() => resolveRequires("k.wgsl", src, lookupIn(files)), /kernel k\.wgsl/, pattern);
  fails({}, /k\.wgsl requires common\/a\.wgsl, which does not exist/);
  fails(
    { "common/a.wgsl": "// requires: common/b.wgsl\n", "common/b.wgsl": "// requires: common/x.wgsl\n" },
    /common\/b\.wgsl requires common\/x\.wgsl/,
  );
  fails(
    { "common/a.wgsl": "// requires: common/b.wgsl\n", "common/b.wgsl": "// requires: common/a.wgsl\n" },
    /cycle of requires: common\/a\.wgsl -> common\/b\.wgsl -> common\/a\.wgsl/,
  );
  fails(
    { "common/a.wgsl": "// requires: common/a.wgsl\n" },
    /cycle of requires: common\/a\.wgsl -> common\/a\.wgsl/,
  );
  const neg = "const NEG_INF_BITS: u32 = 0xff800000u;\nfn neg_inf() -> f32 {\n  let bits = NEG_INF_BITS;\n" +
    "  return bitcast<f32>(bits);\n}\n";
  fails(
    { "common/a.wgsl": neg },
    /"neg_inf" is declared in both common\/a\.wgsl and k\.wgsl/,
    "// requires: common/a.wgsl\nfn neg_inf() -> f32 { return -1.0; }\n",
  );
  fails(
    { "common/a.wgsl": "const X = 1u;\n", "common/b.wgsl": "override X: u32 = 2u;\n" },
    /"X" is declared in both common\/a\.wgsl and common\/b\.wgsl/,
    "// requires: common/a.wgsl, common/b.wgsl\n",
  );
});

Deno.test("module-scope names: declarations outside braces, not locals or comments", () => {
  const src = `struct Params { n: u32, var_x: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
var<workgroup> sh: array<f32, 64>;
override WG: u32 = 64u;
const K = 2u; // const NOT_ME = 1u;
alias Row = array<f32, 4>;
/* fn commented() {} */
@compute @workgroup_size(WG) fn main() { var local = 0u; let y = 1u; const z = 2u; }
fn helper(x: f32) -> f32 {
  var t = x;
  return t;
}`;
  assert.deepEqual(moduleScopeNames(src), ["Params", "p", "out", "sh", "WG", "K", "Row", "main", "helper"]);
});

Deno.test("every kernel in kernels/ resolves; the shared helpers are defined once", async () => {
  let n = 0;
  for await (const f of Deno.readDir(KERNELS)) {
    if (!f.isFile || !f.name.endsWith(".wgsl")) continue;
    const r = await loadKernelSource(f.name, KERNELS);
    assert.equal(r.segments.at(-1)!.file, f.name);
    n++;
  }
  assert.ok(n >= 40);
  for (const f of ["attention_fwd.wgsl", "attention_bwd.wgsl"]) {
    const r = await loadKernelSource(f, KERNELS);
    assert.ok(r.segments.some((s) => s.file === "common/attention_range.wgsl"), f);
    assert.equal(r.code.split("fn key_range(").length, 2, f);
    // the Params parser follows calls into the shared functions: fwd_rows reads p.window through key_range
    const fields = layoutFor(
      f,
      f === "attention_fwd.wgsl" ? "fwd_rows" : "dq_rows",
      parseWgslParams(f, r.code),
    )
      .fields.map((x) => x.name);
    for (const name of ["TK", "causal", "window", "mask_kind"]) {
      assert.ok(fields.includes(name), `${f}: ${name}`);
    }
  }
  for (const f of ["softmax.wgsl", "softmax_backward.wgsl", "reduce.wgsl", "attention_fwd.wgsl"]) {
    const r = await loadKernelSource(f, KERNELS);
    assert.equal(r.code.split("const NEG_INF_BITS").length, 2, f);
  }
  // a shared file that does not exist, through the async loader
  await assert.rejects(
    () => resolveRequiresAsync("k.wgsl", "// requires: common/none.wgsl\n", () => Promise.resolve(undefined)),
    /k\.wgsl requires common\/none\.wgsl, which does not exist/,
  );
});

Deno.test(
  "an inline kernel with requires compiles and runs; compile errors name the shared file's line",
  gpuTest,
  async () => {
    await setup();
    const shared = {
      "common/neg_inf.wgsl": await Deno.readTextFile(new URL("common/neg_inf.wgsl", KERNELS)),
    };
    const src = `// requires: common/neg_inf.wgsl
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1) fn main() {
  out[0] = neg_inf();
  out[1] = select(0.0, 1.0, is_neg_inf(out[0]));
  out[2] = f32(p.n);
}`;
    const k = inlineKernel("requires_inline_test.wgsl", src, shared);
    await compileKernel(k);
    const t = zeros([3]);
    dispatch({ kernel: k, params: { n: 7 }, buffers: [t.binding], workgroups: [1] });
    assert.deepEqual(await values(t), [-Infinity, 1, 7]);
    t.dispose();

    const broken = inlineKernel(
      "requires_broken_test.wgsl",
      "// requires: common/bad.wgsl\n@compute @workgroup_size(1) fn main() { f(); }\n",
      {
        "common/bad.wgsl": "// a shared file with an error on line 3\n\nfn f() { let x: i32 = 1.0; }\n",
      },
    );
    await assert.rejects(() => compileKernel(broken), (e: unknown) => {
      assert.ok(e instanceof KernelError, String(e));
      assert.match(e.message, /requires_broken_test\.wgsl/);
      assert.match(e.message, /common\/bad\.wgsl line 3/);
      return true;
    });
    // a missing shared file for an inline kernel
    throwsKernelError(
      () => inlineKernel("x.wgsl", "// requires: common/neg_inf.wgsl\n"),
      /which does not exist/,
    );
  },
);
