// common/attention_range.wgsl — which keys a query of attention may see, shared by attention_fwd.wgsl and
// attention_bwd.wgsl (`// requires: common/attention_range.wgsl`).
//
// Uses, from the including kernel: `p` (its Params, with TK, causal, window and mask_kind) and `mask` (binding
// 4: the key-padding mask as raw 32-bit words, or with mask_kind 3 each position's segment [start, end)).

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
  if (p.mask_kind == 3u) {
    let w = 2u * (b * p.TK + t);
    lo = max(lo, mask[w]);
    hi = min(hi, mask[w + 1u]);
  }
  return vec2u(lo, hi);
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
  if (p.mask_kind == 3u) {
    let w = 2u * (b * p.TK + s);
    lo = max(lo, mask[w]);
    hi = min(hi, mask[w + 1u]);
  }
  return vec2u(lo, hi);
}

// Whether key s of batch row b passes the padding mask (segments are handled by key_range / query_range).
fn key_ok(b: u32, s: u32) -> bool {
  if (p.mask_kind == 0u || p.mask_kind == 3u) {
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
