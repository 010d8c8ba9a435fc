// gather_rows.wgsl — embedding lookup: out[n, c] = table[idx[n], c].
//
// Bindings: 0 uniform Params { total: u32, C: u32 }; 1 table: array<u32> (read), [V, C];
//           2 idx: array<i32> (read), [N] (validated on the host: 0 ≤ idx < V); 3 out: array<u32> (read_write),
//           [N, C].
// Layout:   row-major; total = N*C. Elements are moved as 32-bit words (bit for bit).
// Dispatch: grid1d(total, 256): i = gid.x + gid.y * nwg.x * 256; n = i / C, c = i % C. Consecutive invocations
//           read consecutive elements of one table row.
// requires: common/grid.wgsl

struct Params { total: u32, C: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.total) { return; }
  let n = i / p.C;
  let c = i - n * p.C;
  out[i] = table[u32(idx[n]) * p.C + c];
}
