// gather_rows_backward.wgsl — the table gradient of gather_rows: a deterministic scatter-add planned on the host.
//
// Bindings: 0 uniform Params { total, C, V, k0, kw, accumulate: u32 }; 1 dy: array<f32> (read), [N, C], the gradient of the
//           gathered rows; 2 plan: array<i32> (read), V + 1 + N entries: plan[v] .. plan[v+1] is the range of table
//           row v's positions, listed in increasing order at plan[V + 1 + k] (a counting sort of the indices);
//           3 dtable: array<f32> (read_write), [V, C].
// Layout:   row-major; total = V*C.
//           dtable[v, c] = Σ_k dy[plan[V+1+k], c] for k from plan[v] to plan[v+1]−1, in that fixed order: no
//           atomics, bit-for-bit reproducible. Rows never gathered get exactly 0.
//           One dispatch sums the window k0 .. k0+kw−1 of each row's list (positions plan[v]+k0 ..), written
//           (accumulate = 0) or added (accumulate = 1): lavapipe stops an invocation after about 65 535 loop
//           iterations, so a row gathered more often than that takes several windows, in order.
// Dispatch: grid1d(total, 256): i = gid.x + gid.y * nwg.x * 256; v = i / C, c = i % C.
// requires: common/grid.wgsl

struct Params { total: u32, C: u32, V: u32, k0: u32, kw: u32, accumulate: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> plan: array<i32>;
@group(0) @binding(3) var<storage, read_write> dtable: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.total) { return; }
  let v = i / p.C;
  let c = i - v * p.C;
  let end = u32(plan[v + 1u]);
  let first = min(u32(plan[v]) + p.k0, end);
  let last = min(end, first + p.kw);
  var s = 0.0;
  for (var k = first; k < last; k++) {
    s += dy[u32(plan[p.V + 1u + k]) * p.C + c];
  }
  if (p.accumulate != 0u) {
    if (first < last) { dtable[i] += s; }
  } else {
    dtable[i] = s;
  }
}
