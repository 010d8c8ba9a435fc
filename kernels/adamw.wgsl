// adamw.wgsl — fused AdamW step (torch.optim.AdamW semantics) over one parameter, or one byte range of it.
//
// Per element, with g = grad · scale[0] (scale = the gradient-clipping coefficient, or 1):
//   param      ← param · decay                                (decay = 1 − lr·weight_decay)
//   exp_avg    ← lerp(exp_avg, g, w1)                          (w1 = 1 − β1; torch's lerp_ rounding)
//   exp_avg_sq ← exp_avg_sq · β2 + w2 · g · g                  (w2 = 1 − β2)
//   param      ← param − step_size · exp_avg / (√exp_avg_sq / bc2_sqrt + eps)
// where step_size = lr / (1 − β1^t) and bc2_sqrt = √(1 − β2^t) are computed on the CPU in float64 for step t,
// exactly as torch computes them from Python floats; eps is added after the square root of the corrected
// second moment.
//
// Bindings: 0 uniform Params { n: u32, decay: f32, w1: f32, beta2: f32, w2: f32, step_size: f32,
//                              bc2_sqrt: f32, eps: f32 };
//           1 param: array<f32> (read_write), n elements;   2 grad: array<f32> (read), n elements;
//           3 exp_avg: array<f32> (read_write), n elements; 4 exp_avg_sq: array<f32> (read_write), n elements;
//           5 scale: array<f32> (read), one element (scale[0] multiplies every gradient).
// Layout:   flat, contiguous; a parameter larger than one binding is updated by several dispatches, each bound
//           to the same element range [start, start + n) of bindings 1–4.
// Dispatch: ceil(n / (256·ITEMS)) workgroups of 256, split over x and y (grid1d(n, 256·ITEMS)). Workgroup
//           w = wid.x + wid.y·nwg.x handles elements w·256·ITEMS + k·256 + lid for k < ITEMS (coalesced).
// The element update is common/adamw_element.wgsl's, shared with adamw_multi.wgsl (several tensors a dispatch).
// requires: common/adamw_element.wgsl

struct Params {
  n: u32,
  decay: f32,
  w1: f32,
  beta2: f32,
  w2: f32,
  step_size: f32,
  bc2_sqrt: f32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg_sq: array<f32>;
@group(0) @binding(5) var<storage, read> scale: array<f32>;

override ITEMS: u32 = 4u;

@compute @workgroup_size(256)
fn main(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let base = (wid.x + wid.y * nwg.x) * 256u * ITEMS + lid.x;
  let s = scale[0];
  for (var k = 0u; k < ITEMS; k++) {
    let i = base + k * 256u;
    if (i >= p.n) { return; }
    let r = adamw_element(grad[i] * s, exp_avg[i], exp_avg_sq[i], param[i]);
    param[i] = r.x;
    exp_avg[i] = r.y;
    exp_avg_sq[i] = r.z;
  }
}
