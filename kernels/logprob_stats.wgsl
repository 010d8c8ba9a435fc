// logprob_stats.wgsl — running per-row softmax statistics over vocabulary chunks (online logsumexp).
//
// For row n and the chunk of logits z[n, 0..VC) (vocabulary ids VLAB..VLAB+VC−1) it merges, into the running state,
//   m = max z,  s = Σ exp(z − m),  s2 = Σ exp(2(z − m)),  sz = Σ z,  zl = z[label] (when the label is in the chunk).
// FIRST = 1 starts a new state; LAST = 1 writes the results instead of the state:
//   lse[n] = m + log s,   logp[n] = zl − lse (0 where labels[n] = ignore, NaN where the label is outside [0, V)),
//   zsum[n] = sz (sum of the logits over the vocabulary),   lsp2[n] = log Σ p² = log s2 − 2 log s.
//
// Bindings: 0 uniform Params { N, VC, LDZ, VLAB, V, FIRST, LAST: u32, ignore: i32 };
//           1 z: array<f32> (read) [N, LDZ] — this chunk's logits;   2 labels: array<i32> (read) [N];
//           3 state: array<f32> (read_write) [N, 5] — (m, s, s2, sz, zl) between chunks;
//           4 logp, 5 lse, 6 zsum, 7 lsp2: array<f32> (read_write) [N] — written when LAST = 1.
// Dispatch: grid1d(N, 64 / LANES) workgroups of 64 (rows (wg.x + wg.y·num_workgroups.x)·64/LANES + t/LANES),
//           LANES invocations per row (override, 1…64): each takes the max, then the sums, of its strided columns
//           (two passes: no data-dependent branch, one exp per element), then the row's lanes merge through a
//           shared-memory tree. The op uses LANES = 1 on CPU adapters (lavapipe: no barriers, ~10× faster than 64
//           lanes per row there) and 64 on GPUs (coalesced reads of the chunk).

struct Params { N: u32, VC: u32, LDZ: u32, VLAB: u32, V: u32, FIRST: u32, LAST: u32, ignore: i32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> logp: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> zsum: array<f32>;
@group(0) @binding(7) var<storage, read_write> lsp2: array<f32>;

const LOW = -3.0e38; // below any finite logit; exp(LOW − x) underflows to 0

// Invocations per row (1, 2, 4, …, 64): 64 / LANES rows per workgroup of 64.
override LANES: u32 = 1u;

var<workgroup> sm: array<f32, 64>;
var<workgroup> ss: array<f32, 64>;
var<workgroup> ss2: array<f32, 64>;
var<workgroup> ssz: array<f32, 64>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) t: u32,
) {
  let lane = t % LANES;
  let row = (wid.x + wid.y * nwg.x) * (64u / LANES) + t / LANES;
  let live = row < p.N;
  let base = min(row, p.N - 1u) * p.LDZ;
  // this lane's columns: lane, lane + LANES, … taken four at a time (lavapipe stops an invocation after 65535 loop
  // iterations in all — llvmpipe's loop limiter — so both passes together run 2·VC/(4·LANES) iterations; the op
  // caps chunks at 16384)
  let step = 4u * LANES;
  let n4 = p.VC / step;
  var m4 = vec4f(LOW);
  for (var q = 0u; q < n4; q++) {
    let j = base + q * step + lane;
    m4 = max(m4, vec4f(z[j], z[j + LANES], z[j + 2u * LANES], z[j + 3u * LANES]));
  }
  var m = max(max(m4.x, m4.y), max(m4.z, m4.w));
  for (var j = n4 * step + lane; j < p.VC; j += LANES) { m = max(m, z[base + j]); }
  var s4 = vec4f(0.0);
  var q4 = vec4f(0.0);
  var z4 = vec4f(0.0);
  for (var q = 0u; q < n4; q++) {
    let j = base + q * step + lane;
    let x = vec4f(z[j], z[j + LANES], z[j + 2u * LANES], z[j + 3u * LANES]);
    let e = exp(x - m);
    s4 += e;
    q4 += e * e;
    z4 += x;
  }
  var s = s4.x + s4.y + s4.z + s4.w;
  var s2 = q4.x + q4.y + q4.z + q4.w;
  var sz = z4.x + z4.y + z4.z + z4.w;
  for (var j = n4 * step + lane; j < p.VC; j += LANES) {
    let x = z[base + j];
    let e = exp(x - m);
    s += e;
    s2 += e * e;
    sz += x;
  }
  if (LANES > 1u) {
    // merge the row's LANES partial states (a tree over neighbouring invocations)
    sm[t] = m;
    ss[t] = s;
    ss2[t] = s2;
    ssz[t] = sz;
    workgroupBarrier();
    for (var st = LANES / 2u; st > 0u; st >>= 1u) {
      if (lane < st) {
        let ma = sm[t];
        let mb = sm[t + st];
        let mm = max(ma, mb);
        let ra = exp(ma - mm);
        let rb = exp(mb - mm);
        sm[t] = mm;
        ss[t] = ss[t] * ra + ss[t + st] * rb;
        ss2[t] = ss2[t] * ra * ra + ss2[t + st] * rb * rb;
        ssz[t] = ssz[t] + ssz[t + st];
      }
      workgroupBarrier();
    }
    m = sm[t];
    s = ss[t];
    s2 = ss2[t];
    sz = ssz[t];
  }
  if (lane != 0u || !live) { return; }
  let lab = labels[row];
  var zl = 0.0;
  let st = row * 5u;
  if (p.FIRST == 0u) {
    let mo = state[st];
    let mm = max(m, mo);
    let ra = exp(m - mm);
    let rb = exp(mo - mm);
    s = s * ra + state[st + 1u] * rb;
    s2 = s2 * ra * ra + state[st + 2u] * rb * rb;
    sz += state[st + 3u];
    zl = state[st + 4u];
    m = mm;
  }
  if (lab >= i32(p.VLAB) && lab < i32(p.VLAB + p.VC)) {
    zl = z[base + u32(lab) - p.VLAB];
  }
  if (p.LAST == 0u) {
    state[st] = m;
    state[st + 1u] = s;
    state[st + 2u] = s2;
    state[st + 3u] = sz;
    state[st + 4u] = zl;
    return;
  }
  let ls = log(s);
  let l = m + ls;
  lse[row] = l;
  zsum[row] = sz;
  lsp2[row] = log(s2) - 2.0 * ls;
  if (lab == p.ignore) {
    logp[row] = 0.0;
  } else if (lab < 0 || lab >= i32(p.V)) {
    let nan_bits = 0x7fc00000u; // a let, never a const-expression: WGSL allows no NaN const-expression
    logp[row] = bitcast<f32>(nan_bits);
  } else {
    logp[row] = zl - l;
  }
}
