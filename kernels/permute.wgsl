// permute.wgsl — out = x with its axes reordered (up to 6 axes), a contiguous copy.
//
// Bindings: 0 uniform Params { n: u32, ndim: u32, out_shape: 6×u32, in_strides: 6×u32 } where in_strides[j] is
//           the stride in x of the axis that becomes output axis j; 1 x: array<f32> (read);
//           2 out: array<f32> (read_write).
// Layout:   both contiguous row-major; n elements.
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y * num_workgroups.x * 256 writes out[i], decomposing i
//           over out_shape (last axis fastest) and gathering x at Σ coord_j · in_strides[j].

struct Params {
  n: u32, ndim: u32,
  s0: u32, s1: u32, s2: u32, s3: u32, s4: u32, s5: u32,
  t0: u32, t1: u32, t2: u32, t3: u32, t4: u32, t5: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let shape = array<u32, 6>(p.s0, p.s1, p.s2, p.s3, p.s4, p.s5);
  let strides = array<u32, 6>(p.t0, p.t1, p.t2, p.t3, p.t4, p.t5);
  var rem = i;
  var src = 0u;
  for (var j = 5; j >= 0; j--) {
    let d = u32(j);
    if (d < p.ndim) {
      let c = rem % shape[d];
      rem = rem / shape[d];
      src += c * strides[d];
    }
  }
  out[i] = x[src];
}
