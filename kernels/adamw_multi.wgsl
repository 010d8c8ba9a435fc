// adamw_multi.wgsl — the fused AdamW step of adamw.wgsl over up to 6 tensors (or element ranges of tensors) in
// one dispatch: torch's multi-tensor ("foreach"/fused) AdamW, for adapters with at least 25 storage bindings per
// stage. Each element gets common/adamw_element.wgsl's update, the same expression as adamw.wgsl's, so the
// results are bit for bit those of one dispatch per tensor.
//
// Bindings: 0 uniform Params { decay, w1, beta2, w2, step_size, bc2_sqrt, eps: f32 (as adamw.wgsl);
//                              ends: array<vec4u, 2>, ns: array<vec4u, 2> } — slot k's tensor has ns[k] elements
//                              and its workgroups are [ends[k−1], ends[k]) (ends[−1] = 0); an unused slot has
//                              ns 0 and the previous slot's end;
//           1 scale: array<f32> (read), one element (the gradient-clipping coefficient, or 1);
//           then for slot k = 0..5, at 2 + 4k, 3 + 4k, 4 + 4k, 5 + 4k:
//             param_k (read_write), grad_k (read), exp_avg_k (read_write), exp_avg_sq_k (read_write),
//             ns[k] elements each from the binding's offset (an unused slot binds any small distinct ranges).
// Layout:   flat, contiguous ranges; the step count and rates are those of every slot (one parameter group, one
//           step count a dispatch).
// Dispatch: ends[5] workgroups of 256 in all, split over x and y (grid1d(ends[5]·256, 256)); workgroup
//           w = wid.x + wid.y·nwg.x finds its slot k (the first with w < ends[k]; none: it returns) and updates
//           element (w − ends[k−1])·256 + lid of that slot's tensor.
// requires: common/adamw_element.wgsl

struct Params {
  decay: f32,
  w1: f32,
  beta2: f32,
  w2: f32,
  step_size: f32,
  bc2_sqrt: f32,
  eps: f32,
  ends: array<vec4u, 2>,
  ns: array<vec4u, 2>,
}

const SLOTS: u32 = 6u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scale: array<f32>;
@group(0) @binding(2) var<storage, read_write> param0: array<f32>;
@group(0) @binding(3) var<storage, read> grad0: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg0: array<f32>;
@group(0) @binding(5) var<storage, read_write> exp_avg_sq0: array<f32>;
@group(0) @binding(6) var<storage, read_write> param1: array<f32>;
@group(0) @binding(7) var<storage, read> grad1: array<f32>;
@group(0) @binding(8) var<storage, read_write> exp_avg1: array<f32>;
@group(0) @binding(9) var<storage, read_write> exp_avg_sq1: array<f32>;
@group(0) @binding(10) var<storage, read_write> param2: array<f32>;
@group(0) @binding(11) var<storage, read> grad2: array<f32>;
@group(0) @binding(12) var<storage, read_write> exp_avg2: array<f32>;
@group(0) @binding(13) var<storage, read_write> exp_avg_sq2: array<f32>;
@group(0) @binding(14) var<storage, read_write> param3: array<f32>;
@group(0) @binding(15) var<storage, read> grad3: array<f32>;
@group(0) @binding(16) var<storage, read_write> exp_avg3: array<f32>;
@group(0) @binding(17) var<storage, read_write> exp_avg_sq3: array<f32>;
@group(0) @binding(18) var<storage, read_write> param4: array<f32>;
@group(0) @binding(19) var<storage, read> grad4: array<f32>;
@group(0) @binding(20) var<storage, read_write> exp_avg4: array<f32>;
@group(0) @binding(21) var<storage, read_write> exp_avg_sq4: array<f32>;
@group(0) @binding(22) var<storage, read_write> param5: array<f32>;
@group(0) @binding(23) var<storage, read> grad5: array<f32>;
@group(0) @binding(24) var<storage, read_write> exp_avg5: array<f32>;
@group(0) @binding(25) var<storage, read_write> exp_avg_sq5: array<f32>;

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
  if (k >= SLOTS) { return; }
  let i = (w - first) * 256u + lid.x;
  if (i >= p.ns[k / 4u][k % 4u]) { return; }
  let s = scale[0];
  switch k {
    case 0u: {
      let r = adamw_element(grad0[i] * s, exp_avg0[i], exp_avg_sq0[i], param0[i]);
      param0[i] = r.x;
      exp_avg0[i] = r.y;
      exp_avg_sq0[i] = r.z;
    }
    case 1u: {
      let r = adamw_element(grad1[i] * s, exp_avg1[i], exp_avg_sq1[i], param1[i]);
      param1[i] = r.x;
      exp_avg1[i] = r.y;
      exp_avg_sq1[i] = r.z;
    }
    case 2u: {
      let r = adamw_element(grad2[i] * s, exp_avg2[i], exp_avg_sq2[i], param2[i]);
      param2[i] = r.x;
      exp_avg2[i] = r.y;
      exp_avg_sq2[i] = r.z;
    }
    case 3u: {
      let r = adamw_element(grad3[i] * s, exp_avg3[i], exp_avg_sq3[i], param3[i]);
      param3[i] = r.x;
      exp_avg3[i] = r.y;
      exp_avg_sq3[i] = r.z;
    }
    case 4u: {
      let r = adamw_element(grad4[i] * s, exp_avg4[i], exp_avg_sq4[i], param4[i]);
      param4[i] = r.x;
      exp_avg4[i] = r.y;
      exp_avg_sq4[i] = r.z;
    }
    case 5u: {
      let r = adamw_element(grad5[i] * s, exp_avg5[i], exp_avg_sq5[i], param5[i]);
      param5[i] = r.x;
      exp_avg5[i] = r.y;
      exp_avg_sq5[i] = r.z;
    }
    default: {}
  }
}
