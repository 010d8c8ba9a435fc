// common/attention_slots.wgsl — a K or V row spread over a subgroup of 8 lanes (`// requires:
// common/attention_slots.wgsl`): attention_fwd_subgroup.wgsl and attention_dq_subgroup.wgsl. Lane l holds the
// row's vec4s l, 8 + l, 16 + l and 24 + l (its slots 0..3); vec4 d is slot d / 8 of lane d mod 8. Uses, from
// the including kernel: the bindings `k` and `v` and the override D4.

// Slot j of s0..s3: j is a literal once the head-dim loops are unrolled, so the choice folds away.
fn slot(s0: vec4f, s1: vec4f, s2: vec4f, s3: vec4f, j: u32) -> vec4f {
  return select(select(s0, s1, j == 1u), select(s2, s3, j == 3u), j >= 2u);
}

// Lane l's slots of K's row at vec4 `base` (past D4 clamped, never used). WGSL cannot pass a storage buffer to a
// function, so K and V each have their loader.
fn k_slots(base: u32, l: u32) -> array<vec4f, 4> {
  let last = D4 - 1u;
  var r = array<vec4f, 4>(k[base + min(l, last)], vec4f(0.0), vec4f(0.0), vec4f(0.0));
  if (D4 > 8u) { r[1] = k[base + min(8u + l, last)]; }
  if (D4 > 16u) { r[2] = k[base + min(16u + l, last)]; }
  if (D4 > 24u) { r[3] = k[base + min(24u + l, last)]; }
  return r;
}

// Lane l's slots of V's row at vec4 `base`, as k_slots.
fn v_slots(base: u32, l: u32) -> array<vec4f, 4> {
  let last = D4 - 1u;
  var r = array<vec4f, 4>(v[base + min(l, last)], vec4f(0.0), vec4f(0.0), vec4f(0.0));
  if (D4 > 8u) { r[1] = v[base + min(8u + l, last)]; }
  if (D4 > 16u) { r[2] = v[base + min(16u + l, last)]; }
  if (D4 > 24u) { r[3] = v[base + min(24u + l, last)]; }
  return r;
}
