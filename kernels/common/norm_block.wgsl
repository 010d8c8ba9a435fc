// common/norm_block.wgsl — a workgroup's sum of squares with NaN/Inf classified on the bits (shared by
// grad_norm.wgsl and grad_norm_multi.wgsl; `// requires: common/norm_block.wgsl`).
//
// Every invocation of a workgroup of 256 passes its own partial sum and flags to block_sum, which sums them with
// a fixed tree (the order depends only on the sizes: bitwise reproducible) and returns the block's value: NaN if
// any flag or the sum says NaN, +Inf if one says infinity (an overflowing sum of finite squares too), else the sum.
// Every invocation of the workgroup must call block_sum (it holds barriers).

const NAN_FLAG: u32 = 1u;
const INF_FLAG: u32 = 2u;
const NAN_BITS: u32 = 0x7fc00000u;
const INF_BITS: u32 = 0x7f800000u;

var<workgroup> sums: array<f32, 256>;
var<workgroup> flags: atomic<u32>;

// NAN_FLAG for a NaN, INF_FLAG for ±Inf, 0 for a finite value, read from the bits.
fn classify(v: f32) -> u32 {
  let b = bitcast<u32>(v) & 0x7fffffffu;
  if (b > INF_BITS) { return NAN_FLAG; }
  if (b == INF_BITS) { return INF_FLAG; }
  return 0u;
}

// A float with the given bits (a runtime value, so a NaN or Inf here is no const-expression error).
fn from_bits(bits: u32) -> f32 {
  var b = bits;
  return bitcast<f32>(b);
}

// Sums sums[0..256) into sums[0] with a fixed tree; every invocation of the workgroup must call it.
fn tree_sum(lid: u32) {
  for (var s = 128u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid < s) { sums[lid] = sums[lid] + sums[lid + s]; }
  }
  workgroupBarrier();
}

// The workgroup's classified sum of `acc` over its 256 invocations, `fl` their flags (NAN_FLAG/INF_FLAG).
fn block_sum(lid: u32, acc: f32, fl: u32) -> f32 {
  sums[lid] = acc;
  if (fl != 0u) { atomicOr(&flags, fl); }
  tree_sum(lid);
  let f = atomicLoad(&flags) | classify(sums[0]);
  var r = sums[0];
  if ((f & NAN_FLAG) != 0u) {
    r = from_bits(NAN_BITS);
  } else if ((f & INF_FLAG) != 0u) {
    r = from_bits(INF_BITS);
  }
  return r;
}
