// common/swiglu_math.wgsl — SwiGLU's value silu(g)·u and its gradients, one element at a time (shared by
// swiglu.wgsl, swiglu_cat.wgsl and matmul_gemv_swiglu.wgsl).
// requires: common/sigmoid.wgsl

fn swiglu_value(g: f32, u: f32) -> f32 {
  return g * sigmoid(g) * u;
}

// The gradients of silu(g)·u times d: (d/dg, d/du).
fn swiglu_grads(g: f32, u: f32, d: f32) -> vec2f {
  let s = sigmoid(g);
  return vec2f(d * u * s * (1.0 + g * (1.0 - s)), d * g * s);
}
