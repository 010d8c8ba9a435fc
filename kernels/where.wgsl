// where.wgsl — out[i] = mask(i) ≠ 0 ? a(i) : b(i): where(mask, a, b), maskedFill, and their gradients
// (dy where the mask picked the operand, 0 elsewhere).
//
// Bindings: 0 uniform Params { n: u32, maskSize: u32, immA: f32, immB: f32 };
//           1 mask: array<u32> (read; the raw bits of an f32 or i32 tensor); 2 a: array<f32> (read);
//           3 b: array<f32> (read); 4 out: array<f32> (read_write).
// Layout:   contiguous; a, b and out hold n elements. The mask holds maskSize elements and repeats over the
//           leading axes (its shape is a suffix of the output's): element i reads mask[i % maskSize].
// Overrides: MASK_I32 (1: the mask is i32, nonzero when its bits are; 0: f32, nonzero unless ±0.0, tested
//           on the bits, so NaN counts as nonzero); A_IMM / B_IMM (1: the operand is the number p.immA /
//           p.immB, and its binding is unused and bound to another buffer).
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y * num_workgroups.x * 256.
// requires: common/grid.wgsl

struct Params { n: u32, maskSize: u32, immA: f32, immB: f32 }

override MASK_I32: u32 = 0u;
override A_IMM: u32 = 0u;
override B_IMM: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> mask: array<u32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  let m = mask[i % p.maskSize];
  // f32: ±0.0 is zero, anything else (denormals, NaN) is nonzero; compared on the bits, immune to fast math.
  let on = select((m & 0x7fffffffu) != 0u, m != 0u, MASK_I32 == 1u);
  var v: f32;
  if (on) {
    if (A_IMM == 1u) { v = p.immA; } else { v = a[i]; }
  } else {
    if (B_IMM == 1u) { v = p.immB; } else { v = b[i]; }
  }
  out[i] = v;
}
