// common/neg_inf.wgsl — -Infinity for kernels that mask with it (shared; kernels include it with
// `// requires: common/neg_inf.wgsl`).
//
// -Infinity is recognised by its bit pattern, so a test does not depend on the compiler's treatment of
// infinities in arithmetic, and made at run time from a `let` holding that pattern: WGSL makes a
// const-expression that evaluates to an infinity a shader-creation error (Chromium's compiler rejects it), and
// an identifier declared with `let` is never a const-expression.

const NEG_INF_BITS: u32 = 0xff800000u;

fn is_neg_inf(v: f32) -> bool {
  return bitcast<u32>(v) == NEG_INF_BITS;
}

fn neg_inf() -> f32 {
  let bits = NEG_INF_BITS;
  return bitcast<f32>(bits);
}
