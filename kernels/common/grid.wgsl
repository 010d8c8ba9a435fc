// common/grid.wgsl — one-dimensional grid indexing (shared; `// requires: common/grid.wgsl`).
//
// A 1-D dispatch of n invocations in workgroups of wg is split over x and y past the 65 535
// workgroups-per-dimension limit (grid1d in src/gpu/queue.ts): invocation i = gid.x + gid.y · nwg.x · wg, where
// gid is @builtin(global_invocation_id) and nwg @builtin(num_workgroups). Invocations past n (the last
// workgroup's tail, the unused part of the last y row) must check i themselves.

fn grid1d_index(gid: vec3u, nwg: vec3u, wg: u32) -> u32 {
  return gid.x + gid.y * nwg.x * wg;
}
