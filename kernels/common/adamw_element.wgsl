// common/adamw_element.wgsl — one element of the AdamW update (shared by adamw.wgsl and adamw_multi.wgsl;
// `// requires: common/adamw_element.wgsl`).
//
// Reads the including kernel's uniform `p` (fields decay, w1, beta2, w2, step_size, bc2_sqrt, eps: f32), so both
// kernels update an element with the same expression, bit for bit. With g the scaled gradient:
//   exp_avg    ← lerp(exp_avg, g, w1)                          (w1 = 1 − β1; torch's lerp_ rounding)
//   exp_avg_sq ← exp_avg_sq · β2 + w2 · g · g                  (w2 = 1 − β2)
//   param      ← param · decay − step_size · exp_avg / (√exp_avg_sq / bc2_sqrt + eps)
// Returns vec3f(param, exp_avg, exp_avg_sq).

fn adamw_element(g: f32, m0: f32, v0: f32, x0: f32) -> vec3f {
  // torch's lerp(self, end, w): self + w·(end − self) when |w| < 0.5, else end − (end − self)·(1 − w).
  var m: f32;
  if (p.w1 < 0.5) {
    m = m0 + p.w1 * (g - m0);
  } else {
    m = g - (g - m0) * (1.0 - p.w1);
  }
  let v = v0 * p.beta2 + p.w2 * g * g;
  let denom = sqrt(v) / p.bc2_sqrt + p.eps;
  let x = x0 * p.decay;
  return vec3f(x - p.step_size * (m / denom), m, v);
}
