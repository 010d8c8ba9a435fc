// common/attention_slots.wgsl — what the subgroup attention kernels share (`// requires:
// common/attention_slots.wgsl`): attention_fwd_subgroup.wgsl and attention_dq_subgroup.wgsl. A workgroup is one
// subgroup of 8 lanes covering 16 query rows, 2 per lane (`row_pair`), visiting the keys of `key_span`; a K or V
// row is spread over the lanes:
// lane l holds the row's vec4s l, 8 + l, 16 + l and 24 + l (its slots 0..3), and vec4 d is slot d / 8 of lane
// d mod 8. Uses, from the including kernel: `p` (common/attention_params.wgsl), the bindings `k` and `v`, and
// common/attention_range.wgsl.

// A lane's two query rows.
struct RowPair {
  b: u32,
  h: u32,
  ia: u32, // row a's index; row b is ia + 1
  has_a: bool,
  has_b: bool,
  ra: vec2u, // key_range and key_hole of rows a and b (empty for a row past TQ)
  ha: vec2u,
  rb: vec2u,
  hb: vec2u,
  row_a: u32, // rows a and b in the [B, H, TQ] layout (clamped to the last row where past TQ: read, not written)
  row_b: u32,
}

// Lane l's rows in the workgroup `wid` of a dispatch (ceil(TQ / 16), B·H).
fn row_pair(wid: vec3u, l: u32) -> RowPair {
  var r: RowPair;
  let bh = wid.y;
  r.h = bh % p.H;
  r.b = bh / p.H;
  r.ia = wid.x * 16u + 2u * l;
  r.has_a = r.ia < p.TQ;
  r.has_b = r.ia + 1u < p.TQ;
  let off = p.TK - p.TQ;
  if (r.has_a) {
    r.ra = key_range(r.b, r.ia + off);
    r.ha = key_hole(r.b, r.ia + off);
  }
  if (r.has_b) {
    r.rb = key_range(r.b, r.ia + 1u + off);
    r.hb = key_hole(r.b, r.ia + 1u + off);
  }
  r.row_a = bh * p.TQ + min(r.ia, p.TQ - 1u);
  r.row_b = bh * p.TQ + min(r.ia + 1u, p.TQ - 1u);
  return r;
}

// [lo, hi): the keys the subgroup of workgroup `wid` visits: the union of its 16 rows' ranges, clipped to the
// dispatch's window. Computed from uniform values only (the workgroup id, the parameters, the read-only mask),
// so the key loop's bounds are uniform, as the subgroup operations inside it need (Tint checks that).
fn key_span(wid: vec3u) -> vec2u {
  let b = wid.y / p.H;
  let off = p.TK - p.TQ;
  var lo = p.TK;
  var hi = 0u;
  for (var j = 0u; j < 16u; j++) {
    let t = wid.x * 16u + j;
    if (t < p.TQ) {
      let r = key_range(b, t + off);
      if (r.x < r.y) {
        lo = min(lo, r.x);
        hi = max(hi, r.y);
      }
    }
  }
  return vec2u(max(lo, p.win_lo), min(hi, p.win_hi));
}

// Whether rows a and b see key s (padding mask, range, hole).
fn row_pair_sees(r: RowPair, s: u32) -> vec2<bool> {
  let kv = key_ok(r.b, s);
  return vec2<bool>(r.has_a && kv && s >= r.ra.x && s < r.ra.y && !in_hole(r.ha, s),
                    r.has_b && kv && s >= r.rb.x && s < r.rb.y && !in_hole(r.hb, s));
}

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
