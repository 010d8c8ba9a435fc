// norm_colsum.wgsl — second pass of the norms' weight/bias gradients: sums per-chunk partials over the chunks,
// in chunk order (deterministic, no atomics).
//   `colsum`:       a[c] = Σ_k partial[k, c]                     for c < cols
//   `colsum_split`: the same sum, written to a[c] for c < split and to b[c − split] for c ≥ split
//                   (LayerNorm: the partial rows hold [dweight | dbias]).
//
// Bindings: 0 uniform Params { rows: u32, cols: u32, split: u32 }; 1 partial: array<f32> (read) [rows, cols];
//           2 a: array<f32> (read_write); 3 b: array<f32> (read_write) — `colsum_split` only (`colsum` binds 1..2).
// Layout:   row-major, contiguous.
// Dispatch: workgroup_size 64, one invocation per column: workgroups [ceil(cols / 64)].

struct Params { rows: u32, cols: u32, split: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;

fn column_sum(c: u32) -> f32 {
  var acc = 0.0;
  for (var k = 0u; k < p.rows; k++) {
    acc += partial[k * p.cols + c];
  }
  return acc;
}

@compute @workgroup_size(64)
fn colsum(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.cols) { return; }
  a[c] = column_sum(c);
}

@compute @workgroup_size(64)
fn colsum_split(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.cols) { return; }
  let s = column_sum(c);
  if (c < p.split) {
    a[c] = s;
  } else {
    b[c - p.split] = s;
  }
}
