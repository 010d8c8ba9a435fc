// kv_append.wgsl — appends new keys (or values) to a KV cache along the sequence axis.
//
// Bindings: 0 uniform Params { n: u32, T0: u32, T1: u32, D: u32 }; 1 old: array<f32> (read) [B, H, T0, D];
//           2 new_kv: array<f32> (read) [B, H, T1, D]; 3 out: array<f32> (read_write) [B, H, T0 + T1, D].
// Layout:   contiguous row-major; n = B·H·(T0 + T1)·D output elements.
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y * num_workgroups.x * 256 writes out[i].

struct Params { n: u32, T0: u32, T1: u32, D: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> old: array<f32>;
@group(0) @binding(2) var<storage, read> new_kv: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let T = p.T0 + p.T1;
  let d = i % p.D;
  let t = (i / p.D) % T;
  let bh = i / (p.D * T);
  if (t < p.T0) {
    out[i] = old[(bh * p.T0 + t) * p.D + d];
  } else {
    out[i] = new_kv[(bh * p.T1 + (t - p.T0)) * p.D + d];
  }
}
