// grad_norm.wgsl — global gradient L2 norm by a deterministic two-pass reduction, the clip coefficient of
// torch.nn.utils.clip_grad_norm_, and in-place gradient scaling.
//
// Entry points (each binds only the bindings it names, in order from 1):
//   partial:     x = one gradient (or one element range of it, n elements); out = the partial-sum buffer.
//                Workgroup w writes out[slot + w] = Σ x[i]² over its block of 256·ITEMS elements.
//   finish:      x = the partial sums (count of them); out[0] = the norm √Σ; out2[0] = the clip coefficient
//                min(1, max_norm / (norm + 1e-6)).
//   finish_norm: as finish without the coefficient (binds x and out only).
//   scale_grads: x = a one-element coefficient; out = a gradient (n elements), out[i] ← out[i] · x[0].
// Non-finite values are classified on their bits (not by float comparisons, which a compiler may assume never
// see NaN): a partial sum is NaN if its block holds a NaN, +Inf if it holds an infinity and no NaN; the norm is
// NaN if any partial is NaN, else +Inf if any partial is infinite (an overflowing sum of finite squares too), so
// a NaN or Inf gradient always shows in the norm. The coefficient is then NaN for a NaN norm and 0 for an
// infinite one (max_norm / Inf), as torch computes it.
//
// Bindings: 0 uniform Params { n: u32, slot: u32, max_norm: f32 };
//           1 x: array<f32> (read); 2 out: array<f32> (read_write); 3 out2: array<f32> (read_write, finish only).
// Layout:   flat, contiguous arrays.
// Dispatch: partial: ceil(n / (256·ITEMS)) workgroups of 256, split over x and y (grid1d(n, 256·ITEMS)); a
//           workgroup w = wid.x + wid.y·nwg.x past the last block returns at once. Within a block, invocation
//           lid sums elements lid + k·256 (k < ITEMS) in order, then a fixed tree over the workgroup.
//           finish, finish_norm: one workgroup of 256; invocation lid sums partials lid, lid + 256, … in order,
//           then the same fixed tree. scale_grads: grid1d(n, 256), one element per invocation.
// The summation order depends only on the sizes, so the result is bitwise reproducible run to run.
// The block sums and the NaN/Inf classification are common/norm_block.wgsl's, shared with grad_norm_multi.wgsl
// (the partial pass over several gradients a dispatch).
// requires: common/grid.wgsl, common/norm_block.wgsl

struct Params {
  n: u32,
  slot: u32,
  max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> out2: array<f32>;

override ITEMS: u32 = 16u;

@compute @workgroup_size(256)
fn partial(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let w = wid.x + wid.y * nwg.x;
  let start = w * 256u * ITEMS;
  if (start >= p.n) { return; }  // uniform across the workgroup
  var acc = 0.0;
  var fl = 0u;
  for (var k = 0u; k < ITEMS; k++) {
    let i = start + k * 256u + lid.x;
    if (i < p.n) {
      let v = x[i];
      acc = acc + v * v;
      fl = fl | classify(v);
    }
  }
  let r = block_sum(lid.x, acc, fl);
  if (lid.x == 0u) { out[p.slot + w] = r; }
}

// The reduction of the partial sums shared by finish and finish_norm; returns (norm, flags) to invocation 0.
fn reduce_partials(lid: u32) -> vec2f {
  var acc = 0.0;
  var fl = 0u;
  for (var i = lid; i < p.n; i += 256u) {
    let v = x[i];
    acc = acc + v;
    fl = fl | classify(v);
  }
  sums[lid] = acc;
  if (fl != 0u) { atomicOr(&flags, fl); }
  tree_sum(lid);
  let f = atomicLoad(&flags) | classify(sums[0]);
  var norm = sqrt(sums[0]);
  if ((f & NAN_FLAG) != 0u) {
    norm = from_bits(NAN_BITS);
  } else if ((f & INF_FLAG) != 0u) {
    norm = from_bits(INF_BITS);
  }
  return vec2f(norm, f32(f));
}

@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_id) lid: vec3u) {
  let r = reduce_partials(lid.x);
  if (lid.x == 0u) {
    let f = u32(r.y);
    out[0] = r.x;
    var coef = min(1.0, p.max_norm / (r.x + 1e-6));
    if ((f & NAN_FLAG) != 0u) {
      coef = from_bits(NAN_BITS);
    } else if ((f & INF_FLAG) != 0u) {
      coef = 0.0;
    }
    out2[0] = coef;
  }
}

@compute @workgroup_size(256)
fn finish_norm(@builtin(local_invocation_id) lid: vec3u) {
  let r = reduce_partials(lid.x);
  if (lid.x == 0u) { out[0] = r.x; }
}

@compute @workgroup_size(256)
fn scale_grads(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  out[i] = out[i] * x[0];
}
