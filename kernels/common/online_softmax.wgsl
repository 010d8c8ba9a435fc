// common/online_softmax.wgsl — softmax's row state (m, s) = (max, Σ exp(v − m)) built in one pass (shared;
// kernels include it with `// requires: common/online_softmax.wgsl`): softmax, logprob_gather.
//
// -Infinity values contribute nothing, and an empty state is (-Infinity, 0) (recognised by bit pattern, see
// neg_inf.wgsl); finite states merge as max, then the two sums rescaled to it. `workgroup_softmax` merges the
// states of a workgroup's invocations by a tree in a fixed order (the including kernel's `WG`: a power of two
// ≤ 256); every invocation must call it (it holds barriers) and gets the row's state.
// requires: common/neg_inf.wgsl

var<workgroup> wg_softmax: array<vec2f, 256>;

// The state ms after one more value v.
fn softmax_push(ms: vec2f, v: f32) -> vec2f {
  if (is_neg_inf(v)) { return ms; }
  if (is_neg_inf(ms.x)) { return vec2f(v, 1.0); }
  if (v > ms.x) { return vec2f(v, ms.y * exp(ms.x - v) + 1.0); }
  return vec2f(ms.x, ms.y + exp(v - ms.x));
}

// The state of the values of a and of b together.
fn softmax_merge(a: vec2f, b: vec2f) -> vec2f {
  if (is_neg_inf(b.x)) { return a; }
  if (is_neg_inf(a.x)) { return b; }
  let m = max(a.x, b.x);
  return vec2f(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

// The merged state of every invocation's ms.
fn workgroup_softmax(lid: u32, ms: vec2f) -> vec2f {
  wg_softmax[lid] = ms;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) {
      wg_softmax[lid] = softmax_merge(wg_softmax[lid], wg_softmax[lid + h]);
    }
    workgroupBarrier();
  }
  let row = wg_softmax[0];
  workgroupBarrier();
  return row;
}
