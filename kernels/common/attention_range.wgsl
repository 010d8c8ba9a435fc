// common/attention_range.wgsl — which keys a query of attention may see, shared by attention_fwd.wgsl and
// attention_bwd.wgsl (`// requires: common/attention_range.wgsl`).
//
// Uses, from the including kernel: `p` (its Params, with TK, causal, window and mask_kind) and `mask` (binding
// 4: the key-padding mask as raw 32-bit words; with mask_kind 3 each position's segment [start, end); with
// mask_kind 4, causal only, four words per position: start, end, hole_lo, hole_hi).
//
// mask_kind 4 packs the two sequences of a preference pair around their common prefix, run once: a segment
// [prefix | chosen rest | rejected rest]. As a query, position t sees the keys of [start, t] except its hole
// [hole_lo, hole_hi) (a rejected-rest query does not see the chosen rest); as a key, position s is seen by the
// queries of [s, end) (a chosen-rest key: up to the end of the chosen rest). The caller keeps the two views
// consistent: no query of [s, end) has s in its hole.

// The words of position t of batch row b in `mask` with segments (mask_kind 3 or 4).
fn segment_word(b: u32, t: u32) -> u32 {
  return select(2u, 4u, p.mask_kind == 4u) * (b * p.TK + t);
}

// [lo, hi): the keys a query at absolute position t of batch row b may see before the padding mask. With
// segments (mask_kind 3) a query sees only the keys of its own segment.
fn key_range(b: u32, t: u32) -> vec2u {
  var lo = 0u;
  var hi = p.TK;
  if (p.causal != 0u) {
    hi = t + 1u;
    if (p.window != 0u && t + 1u > p.window) {
      lo = t + 1u - p.window;
    }
  }
  if (p.mask_kind >= 3u) {
    let w = segment_word(b, t);
    lo = max(lo, mask[w]);
    hi = min(hi, mask[w + 1u]);
  }
  return vec2u(lo, hi);
}

// [lo, hi): the keys inside a query's key_range that it may not see (mask_kind 4; else empty).
fn key_hole(b: u32, t: u32) -> vec2u {
  if (p.mask_kind != 4u) {
    return vec2u(0u, 0u);
  }
  let w = segment_word(b, t);
  return vec2u(mask[w + 2u], mask[w + 3u]);
}

// Whether key s lies in a hole from key_hole.
fn in_hole(hole: vec2u, s: u32) -> bool {
  return s >= hole.x && s < hole.y;
}

// [lo, hi): the absolute query positions of batch row b that may see key s (the inverse of key_range).
fn query_range(b: u32, s: u32) -> vec2u {
  var lo = 0u;
  var hi = p.TK;
  if (p.causal != 0u) {
    lo = s;
    if (p.window != 0u) {
      hi = min(p.TK, s + p.window);
    }
  }
  if (p.mask_kind >= 3u) {
    let w = segment_word(b, s);
    lo = max(lo, mask[w]);
    hi = min(hi, mask[w + 1u]);
  }
  return vec2u(lo, hi);
}

// Whether key s of batch row b passes the padding mask (segments are handled by key_range, key_hole and
// query_range).
fn key_ok(b: u32, s: u32) -> bool {
  if (p.mask_kind == 0u || p.mask_kind >= 3u) {
    return true;
  }
  let w = mask[b * p.TK + s];
  if (p.mask_kind == 1u) {
    return w != 0u;
  }
  return (w & 0x7fffffffu) != 0u;
}

// The sum of a vec4's lanes, in a fixed order.
fn hsum(x: vec4f) -> f32 {
  return (x.x + x.y) + (x.z + x.w);
}
