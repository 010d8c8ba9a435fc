// common/workgroup_reduce.wgsl — sums over the invocations of a workgroup (shared; kernels include it with
// `// requires: common/workgroup_reduce.wgsl`): rmsnorm, layernorm, reduce, softmax_backward.
//
// Uses the including kernel's `WG` (its workgroup size: a power of two ≤ 256, override or const). A tree in a
// fixed order, each step adding the upper half into the lower half, so a kernel's result does not depend on
// scheduling and equals any other kernel's over the same values. Every invocation of the workgroup must call
// the function (it holds barriers: call it in uniform control flow), and every invocation gets the total.
// Workgroup memory: 256 entries of the function's type (only the functions a kernel calls count).

var<workgroup> wg_sum1: array<f32, 256>;
var<workgroup> wg_sum2: array<vec2f, 256>;

// Σ v over the workgroup.
fn workgroup_sum(lid: u32, v: f32) -> f32 {
  wg_sum1[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      wg_sum1[lid] = wg_sum1[lid] + wg_sum1[lid + s];
    }
    workgroupBarrier();
  }
  let total = wg_sum1[0];
  workgroupBarrier();
  return total;
}

// Σ v.x and Σ v.y over the workgroup (each component as workgroup_sum would give it).
fn workgroup_sum2(lid: u32, v: vec2f) -> vec2f {
  wg_sum2[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      wg_sum2[lid] = wg_sum2[lid] + wg_sum2[lid + s];
    }
    workgroupBarrier();
  }
  let total = wg_sum2[0];
  workgroupBarrier();
  return total;
}
