// common/sigmoid.wgsl — the logistic function in its stable form, through exp(−|v|), which never overflows
// (shared by unary.wgsl, dpo_loss.wgsl and the SwiGLU kernels; `// requires: common/sigmoid.wgsl`).

fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, v >= 0.0);
}
