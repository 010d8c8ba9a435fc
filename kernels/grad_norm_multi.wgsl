// grad_norm_multi.wgsl — the partial pass of grad_norm.wgsl over up to 24 gradients (or element ranges of
// gradients) in one dispatch, for adapters with at least 25 storage bindings per stage. Each workgroup sums the
// squares of one 4096-element block of one slot's gradient exactly as grad_norm.wgsl's `partial` does (same
// element order, same common/norm_block.wgsl tree), and the blocks are numbered in slot order, so the partial
// sums, and the norm finish() makes of them, are bit for bit those of one dispatch per gradient.
//
// Bindings: 0 uniform Params { slot: u32, ends: array<vec4u, 6>, ns: array<vec4u, 6> } — slot k's gradient has
//             ns[k] elements and its blocks are workgroups [ends[k−1], ends[k]) (ends[−1] = 0); an unused slot
//             has ns 0 and the previous slot's end;
//           1 out: array<f32> (read_write), the partial sums: workgroup w writes out[slot + w];
//           2 + k (k = 0..23): x_k: array<f32> (read), slot k's gradient range (an unused slot binds any buffer).
// Layout:   flat, contiguous ranges.
// Dispatch: ends[23] workgroups of 256 in all, split over x and y (grid1d(ends[23]·4096, 4096)); workgroup
//           w = wid.x + wid.y·nwg.x finds its slot k (the first with w < ends[k]; none: it returns), and sums
//           elements b·4096 + j·256 + lid (j < 16, in order) of x_k, b = w − ends[k−1], then the fixed tree.
// requires: common/norm_block.wgsl

struct Params {
  slot: u32,
  ends: array<vec4u, 6>,
  ns: array<vec4u, 6>,
}

const SLOTS: u32 = 24u;
const ITEMS: u32 = 16u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x0: array<f32>;
@group(0) @binding(3) var<storage, read> x1: array<f32>;
@group(0) @binding(4) var<storage, read> x2: array<f32>;
@group(0) @binding(5) var<storage, read> x3: array<f32>;
@group(0) @binding(6) var<storage, read> x4: array<f32>;
@group(0) @binding(7) var<storage, read> x5: array<f32>;
@group(0) @binding(8) var<storage, read> x6: array<f32>;
@group(0) @binding(9) var<storage, read> x7: array<f32>;
@group(0) @binding(10) var<storage, read> x8: array<f32>;
@group(0) @binding(11) var<storage, read> x9: array<f32>;
@group(0) @binding(12) var<storage, read> x10: array<f32>;
@group(0) @binding(13) var<storage, read> x11: array<f32>;
@group(0) @binding(14) var<storage, read> x12: array<f32>;
@group(0) @binding(15) var<storage, read> x13: array<f32>;
@group(0) @binding(16) var<storage, read> x14: array<f32>;
@group(0) @binding(17) var<storage, read> x15: array<f32>;
@group(0) @binding(18) var<storage, read> x16: array<f32>;
@group(0) @binding(19) var<storage, read> x17: array<f32>;
@group(0) @binding(20) var<storage, read> x18: array<f32>;
@group(0) @binding(21) var<storage, read> x19: array<f32>;
@group(0) @binding(22) var<storage, read> x20: array<f32>;
@group(0) @binding(23) var<storage, read> x21: array<f32>;
@group(0) @binding(24) var<storage, read> x22: array<f32>;
@group(0) @binding(25) var<storage, read> x23: array<f32>;

// Element i of slot k's gradient.
fn load(k: u32, i: u32) -> f32 {
  switch k {
    case 0u: { return x0[i]; }
    case 1u: { return x1[i]; }
    case 2u: { return x2[i]; }
    case 3u: { return x3[i]; }
    case 4u: { return x4[i]; }
    case 5u: { return x5[i]; }
    case 6u: { return x6[i]; }
    case 7u: { return x7[i]; }
    case 8u: { return x8[i]; }
    case 9u: { return x9[i]; }
    case 10u: { return x10[i]; }
    case 11u: { return x11[i]; }
    case 12u: { return x12[i]; }
    case 13u: { return x13[i]; }
    case 14u: { return x14[i]; }
    case 15u: { return x15[i]; }
    case 16u: { return x16[i]; }
    case 17u: { return x17[i]; }
    case 18u: { return x18[i]; }
    case 19u: { return x19[i]; }
    case 20u: { return x20[i]; }
    case 21u: { return x21[i]; }
    case 22u: { return x22[i]; }
    case 23u: { return x23[i]; }
    default: { return 0.0; }
  }
}

@compute @workgroup_size(256)
fn main(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let w = wid.x + wid.y * nwg.x;
  var k = 0u;
  var first = 0u;
  for (; k < SLOTS; k++) {
    let end = p.ends[k / 4u][k % 4u];
    if (w < end) { break; }
    first = end;
  }
  if (k >= SLOTS) { return; }  // uniform across the workgroup, as every branch before the tree
  let n = p.ns[k / 4u][k % 4u];
  let start = (w - first) * 256u * ITEMS;
  if (start >= n) { return; }
  var acc = 0.0;
  var fl = 0u;
  for (var j = 0u; j < ITEMS; j++) {
    let i = start + j * 256u + lid.x;
    if (i < n) {
      let v = load(k, i);
      acc = acc + v * v;
      fl = fl | classify(v);
    }
  }
  let r = block_sum(lid.x, acc, fl);
  if (lid.x == 0u) { out[p.slot + w] = r; }
}
