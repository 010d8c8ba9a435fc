/** src/gpu/unroll.ts: loops over an override bound unrolled in WGSL text, and the cases it refuses. */
import assert from "node:assert/strict";
import { unrollLoops } from "../src/gpu/unroll.ts";

Deno.test("unrollLoops copies each loop body with the loop variable as a literal", () => {
  const src = [
    "fn f() -> f32 {",
    "  var s = 0.0;",
    "  for (var d = 0u; d < D4; d++) { s += a[d] * dd[d]; let x = vec2u(d, 1u); }",
    "  for (var e = 0u; e < D4; e++) { s += a[e]; }",
    "  for(var d=0u;d<D4;d++){ if (d > 0u) { s += 1.0; } }",
    "  return s;",
    "}",
  ].join("\n");
  const out = unrollLoops(src, "d", "D4", 2);
  assert.equal(
    out,
    [
      "fn f() -> f32 {",
      "  var s = 0.0;",
      "  {{ s += a[0u] * dd[0u]; let x = vec2u(0u, 1u); }{ s += a[1u] * dd[1u]; let x = vec2u(1u, 1u); }}",
      "  for (var e = 0u; e < D4; e++) { s += a[e]; }",
      "  {{ if (0u > 0u) { s += 1.0; } }{ if (1u > 0u) { s += 1.0; } }}",
      "  return s;",
      "}",
    ].join("\n"),
  );
  assert.equal(unrollLoops(src, "d", "D4", 0).includes("for (var d"), false);
  assert.equal(unrollLoops(src, "d", "DMAX4", 3), src, "another bound: untouched");
});

Deno.test("unrollLoops refuses a body it cannot copy", () => {
  const loop = (body: string) => `for (var d = 0u; d < D4; d++) { ${body} }`;
  assert.throws(() => unrollLoops(loop("if (x) { break; }"), "d", "D4", 2), /breaks, continues or nests/);
  assert.throws(() => unrollLoops(loop("continue;"), "d", "D4", 2), /breaks, continues or nests/);
  assert.throws(() => unrollLoops(loop(loop("s += 1.0;")), "d", "D4", 2), /nests/);
  assert.throws(() => unrollLoops("for (var d = 0u; d < D4; d++) { s += 1.0;", "d", "D4", 2), /not closed/);
  assert.throws(() => unrollLoops("", "d", "D4", -1), /not a loop count/);
});
