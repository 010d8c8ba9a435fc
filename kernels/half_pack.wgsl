// half_pack.wgsl — frozen weights stored in 16 bits (float16 or bfloat16), two values per u32 word, and their
// f32 values back for computing. Element 2i is the word's low half, element 2i+1 its high half (a tail element
// pairs with 0). Both conversions round to nearest, ties to even, in integer arithmetic, so every adapter gives
// the same bits:
// - float16: exponent rebias, the subnormal range by shifting, values past 65504 after rounding become ±inf,
//   NaN stays NaN; back exactly (every float16 is an f32), in integer arithmetic too, so no driver's handling of
//   subnormals can flush the smallest weights.
// - bfloat16: the high 16 bits of the rounded f32 (NaN stays NaN); back by shifting into the high half.
//
// Bindings: 0 uniform Params { n: u32, bf16: u32 }; 1 src: array<u32> (read); 2 dst: array<u32> (read_write).
//           pack:   src = n f32 values (as bits), dst = ceil(n / 2) words;
//           unpack: src = ceil(n / 2) words,      dst = n f32 values (as bits).
// Layout:   flat, contiguous (the host binds a chunk of a large tensor at a time: n is the chunk's element count,
//           even except for the last chunk).
// Dispatch: grid1d(ceil(n / 2), 256): invocation i handles elements 2i and 2i+1 (word i).
// requires: common/grid.wgsl

struct Params { n: u32, bf16: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

// float16 bits of an f32 (bits b), rounded to nearest even.
fn f16_bits(b: u32) -> u32 {
  let sign = (b >> 16u) & 0x8000u;
  let ef = (b >> 23u) & 0xffu;
  let m = b & 0x7fffffu;
  if (ef == 0xffu) {
    return sign | select(0x7c00u, 0x7e00u | (m >> 13u), m != 0u); // inf, or a quiet NaN
  }
  let e = i32(ef) - 112; // the float16 exponent field: ef − 127 + 15
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    // float16 subnormal (or zero): the 24-bit significand shifted right by 14 − e ≥ 14
    if (e < -10) { return sign; } // below half the smallest subnormal
    let s = u32(14 - e);
    let full = m | 0x800000u;
    let rest = full & ((1u << s) - 1u);
    let half = 1u << (s - 1u);
    var r = full >> s;
    if (rest > half || (rest == half && (r & 1u) == 1u)) { r += 1u; }
    return sign | r;
  }
  let rest = m & 0x1fffu;
  var r = (u32(e) << 10u) | (m >> 13u);
  // a carry out of the significand moves into the exponent, as rounding must (up to inf)
  if (rest > 0x1000u || (rest == 0x1000u && (r & 1u) == 1u)) { r += 1u; }
  return sign | r;
}

// bfloat16 bits of an f32 (bits b), rounded to nearest even.
fn bf16_bits(b: u32) -> u32 {
  if ((b & 0x7fffffffu) > 0x7f800000u) { return (b >> 16u) | 0x40u; } // a quiet NaN
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

// The f32 bits of float16 bits h.
fn f32_of_f16(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return sign | 0x7f800000u | (m << 13u); }
  if (e != 0u) { return sign | ((e + 112u) << 23u) | (m << 13u); }
  if (m == 0u) { return sign; }
  // subnormal m·2^-24: normal in f32, with the leading bit (position t) made implicit
  let t = 31u - countLeadingZeros(m);
  return sign | ((t + 103u) << 23u) | ((m << (23u - t)) & 0x7fffffu);
}

fn half_bits(b: u32) -> u32 {
  if (p.bf16 != 0u) { return bf16_bits(b); }
  return f16_bits(b);
}

@compute @workgroup_size(256)
fn pack(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (2u * i >= p.n) { return; }
  let lo = half_bits(src[2u * i]);
  var hi = 0u;
  if (2u * i + 1u < p.n) { hi = half_bits(src[2u * i + 1u]); }
  dst[i] = lo | (hi << 16u);
}

@compute @workgroup_size(256)
fn unpack(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (2u * i >= p.n) { return; }
  let w = src[i];
  var v = vec2u(w << 16u, w & 0xffff0000u);
  if (p.bf16 == 0u) { v = vec2u(f32_of_f16(w & 0xffffu), f32_of_f16(w >> 16u)); }
  dst[2u * i] = v.x;
  if (2u * i + 1u < p.n) { dst[2u * i + 1u] = v.y; }
}
