// permute.wgsl — out = x with its axes reordered (up to 6 axes), a contiguous copy.
//
// Bindings: 0 uniform Params { n: u32, ndim: u32, out_shape: 6×u32, in_strides: 6×u32 } where in_strides[j] is
//           the stride in x of the axis that becomes output axis j; 1 x: array<f32> (read);
//           2 out: array<f32> (read_write).
// Layout:   both contiguous row-major; n elements.
// Dispatch: `main` (GPUs): grid1d(n, 256): invocation i = gid.x + gid.y * num_workgroups.x * 256 writes out[i],
//           decomposing i over out_shape (last axis fastest) and gathering x at Σ coord_j · in_strides[j].
//           `runs` (CPU adapters, where integer division per element dominates): the shape padded on the left to
//           6 axes; rows = s0·…·s4 output rows of s5 elements, each cut into `chunks` runs of at most `run`
//           elements (lavapipe's loop limit); grid1d(rows · chunks, 64): invocation i copies run i % chunks of
//           row i / chunks, one decomposition per run, then x read with stride t5. Uses the second Params layout
//           (RunParams) at the same binding.
// requires: common/grid.wgsl

struct Params {
  n: u32, ndim: u32,
  s0: u32, s1: u32, s2: u32, s3: u32, s4: u32, s5: u32,
  t0: u32, t1: u32, t2: u32, t3: u32, t4: u32, t5: u32,
}

struct RunParams {
  rows: u32, chunks: u32, run: u32, inner: u32,
  s0: u32, s1: u32, s2: u32, s3: u32, s4: u32,
  t0: u32, t1: u32, t2: u32, t3: u32, t4: u32, t5: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(0) var<uniform> q: RunParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
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

@compute @workgroup_size(64)
fn runs(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 64u);
  if (i >= q.rows * q.chunks) { return; }
  let row = i / q.chunks;
  let k0 = (i % q.chunks) * q.run;
  let k1 = min(q.inner, k0 + q.run);
  var r = row;
  let c4 = r % q.s4;
  r = r / q.s4;
  let c3 = r % q.s3;
  r = r / q.s3;
  let c2 = r % q.s2;
  r = r / q.s2;
  let c1 = r % q.s1;
  let c0 = r / q.s1;
  var src = c0 * q.t0 + c1 * q.t1 + c2 * q.t2 + c3 * q.t3 + c4 * q.t4 + k0 * q.t5;
  var dst = row * q.inner + k0;
  for (var k = k0; k < k1; k++) {
    out[dst] = x[src];
    dst += 1u;
    src += q.t5;
  }
}
