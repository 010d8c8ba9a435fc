// int8_matmul.wgsl — products with an int8 weight-only matrix Ŵ [OUT, IN], Ŵ[o, k] = s[o] · q[o, k]
// (q in −127..127, one f32 scale per output channel), dequantised in registers:
//   forward*:         out[n, o] = Σ_k a[n, k] · Ŵ[o, k]     (y = x·Ŵᵀ; a = x [N, IN], out = y [N, OUT])
//   backward_input*:  out[n, k] = Σ_o a[n, o] · Ŵ[o, k]     (dx = dy·Ŵ; a = dy [N, OUT], out = dx [N, IN])
//
// Bindings: 0 uniform Params { N, IN, OUT, KW, aOff, outOff, k0, kn, accumulate: u32 }
//           1 a: array<f32> (read)         row-major [N, IN] (forward) or [N, OUT] (backward_input), from
//                                           element aOff of the binding
//           2 w: array<u32> (read)         packed weights [OUT, KW], KW = ceil(IN / 4): byte j (little-endian) of
//                                           w[o·KW + g] is q[o, 4g + j] in two's complement; padding bytes are 0
//           3 s: array<f32> (read)         scales [OUT]
//           4 out: array<f32> (read_write) row-major [N, OUT] (forward) or [N, IN] (backward_input), from
//                                           element outOff of the binding
//           5 a4: array<vec4f> (read)      the same range as binding 1, read as vec4 by the *_vec4 entries, which
//                                           need the row length of a (IN, resp. OUT) and aOff to be multiples of 4
// Every entry is dispatched with all five bindings (1 and 5 the same buffer range); each reads a or a4.
// Dispatch: forward* — workgroups (ceil(OUT / 64), ceil(N / 16)) of 16×4 invocations; invocation (x, y) computes
//           rows 4y..4y+3 × output channels 4x..4x+3 (a register tile; per step one packed word of each of the 4
//           weight rows and 4 values of each of the 4 input rows).
//           backward_input* — workgroups (ceil(KW / 16), ceil(N / 16)); invocation (x, y) computes rows 4y..4y+3 ×
//           input columns 4x..4x+3 (per step 4 output channels: 4 packed words and 4 values of each dy row).
// Out-of-range rows/columns are clamped on load and skipped on store, so any N, IN, OUT ≥ 1 works.
// Windows: one dispatch sums the reduction steps k0 .. k0+kn−1 only (forward: packed words g; backward_input:
// output channels o, both multiples of 4 for the vec4 entry) and writes (accumulate = 0) or adds (1) its part:
// lavapipe stops an invocation after about 65 535 loop iterations in all, so the op takes longer sums in windows.

struct Params { N: u32, IN: u32, OUT: u32, KW: u32, aOff: u32, outOff: u32, k0: u32, kn: u32, accumulate: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> s: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> a4: array<vec4f>;

// The four signed bytes of a packed word, as floats (byte 0 → .x).
fn unpack(v: u32) -> vec4f {
  let b = vec4i(bitcast<i32>(v << 24u), bitcast<i32>(v << 16u), bitcast<i32>(v << 8u), bitcast<i32>(v));
  return vec4f(b >> vec4u(24u));
}

// Four consecutive values of a from element i (elements at column ≥ lim, with c the column of i, read as 0).
fn load4(i: u32, c: u32, lim: u32) -> vec4f {
  if (c + 3u < lim) {
    return vec4f(a[i], a[i + 1u], a[i + 2u], a[i + 3u]);
  }
  var v = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (c + j < lim) { v[j] = a[i + j]; }
  }
  return v;
}

// The first element of row n + i of a (clamped to the last row).
fn row(n: u32, i: u32, len: u32) -> u32 {
  return p.aOff + min(n + i, p.N - 1u) * len;
}

// Writes out[i] = v, or adds v to it in a later window.
fn put(i: u32, v: f32) {
  if (p.accumulate != 0u) {
    out[i] += v;
  } else {
    out[i] = v;
  }
}

fn store_forward(n0: u32, o0: u32, acc: array<vec4f, 4>) {
  var sc = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) { sc[j] = s[min(o0 + j, p.OUT - 1u)]; }
  for (var r = 0u; r < 4u; r++) {
    let n = n0 + r;
    if (n >= p.N) { break; }
    let v = acc[r] * sc;
    for (var j = 0u; j < 4u; j++) {
      if (o0 + j < p.OUT) { put(p.outOff + n * p.OUT + o0 + j, v[j]); }
    }
  }
}

fn store_backward(n0: u32, c: u32, acc: array<vec4f, 4>) {
  for (var r = 0u; r < 4u; r++) {
    let n = n0 + r;
    if (n >= p.N) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (c + j < p.IN) { put(p.outOff + n * p.IN + c + j, acc[r][j]); }
    }
  }
}

@compute @workgroup_size(16, 4)
fn forward(@builtin(global_invocation_id) gid: vec3u) {
  let o0 = gid.x * 4u;
  let n0 = gid.y * 4u;
  if (o0 >= p.OUT || n0 >= p.N) { return; }
  let r0 = row(n0, 0u, p.IN);
  let r1 = row(n0, 1u, p.IN);
  let r2 = row(n0, 2u, p.IN);
  let r3 = row(n0, 3u, p.IN);
  let w0 = min(o0, p.OUT - 1u) * p.KW;
  let w1 = min(o0 + 1u, p.OUT - 1u) * p.KW;
  let w2 = min(o0 + 2u, p.OUT - 1u) * p.KW;
  let w3 = min(o0 + 3u, p.OUT - 1u) * p.KW;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var g = p.k0; g < min(p.KW, p.k0 + p.kn); g++) {
    let q0 = unpack(w[w0 + g]);
    let q1 = unpack(w[w1 + g]);
    let q2 = unpack(w[w2 + g]);
    let q3 = unpack(w[w3 + g]);
    let c = 4u * g;
    let x0 = load4(r0 + c, c, p.IN);
    let x1 = load4(r1 + c, c, p.IN);
    let x2 = load4(r2 + c, c, p.IN);
    let x3 = load4(r3 + c, c, p.IN);
    acc0 += vec4f(dot(x0, q0), dot(x0, q1), dot(x0, q2), dot(x0, q3));
    acc1 += vec4f(dot(x1, q0), dot(x1, q1), dot(x1, q2), dot(x1, q3));
    acc2 += vec4f(dot(x2, q0), dot(x2, q1), dot(x2, q2), dot(x2, q3));
    acc3 += vec4f(dot(x3, q0), dot(x3, q1), dot(x3, q2), dot(x3, q3));
  }
  store_forward(n0, o0, array<vec4f, 4>(acc0, acc1, acc2, acc3));
}

@compute @workgroup_size(16, 4)
fn forward_vec4(@builtin(global_invocation_id) gid: vec3u) {
  let o0 = gid.x * 4u;
  let n0 = gid.y * 4u;
  if (o0 >= p.OUT || n0 >= p.N) { return; }
  let r0 = row(n0, 0u, p.IN) / 4u;
  let r1 = row(n0, 1u, p.IN) / 4u;
  let r2 = row(n0, 2u, p.IN) / 4u;
  let r3 = row(n0, 3u, p.IN) / 4u;
  let w0 = min(o0, p.OUT - 1u) * p.KW;
  let w1 = min(o0 + 1u, p.OUT - 1u) * p.KW;
  let w2 = min(o0 + 2u, p.OUT - 1u) * p.KW;
  let w3 = min(o0 + 3u, p.OUT - 1u) * p.KW;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var g = p.k0; g < min(p.KW, p.k0 + p.kn); g++) {
    let q0 = unpack(w[w0 + g]);
    let q1 = unpack(w[w1 + g]);
    let q2 = unpack(w[w2 + g]);
    let q3 = unpack(w[w3 + g]);
    let x0 = a4[r0 + g];
    let x1 = a4[r1 + g];
    let x2 = a4[r2 + g];
    let x3 = a4[r3 + g];
    acc0 += vec4f(dot(x0, q0), dot(x0, q1), dot(x0, q2), dot(x0, q3));
    acc1 += vec4f(dot(x1, q0), dot(x1, q1), dot(x1, q2), dot(x1, q3));
    acc2 += vec4f(dot(x2, q0), dot(x2, q1), dot(x2, q2), dot(x2, q3));
    acc3 += vec4f(dot(x3, q0), dot(x3, q1), dot(x3, q2), dot(x3, q3));
  }
  store_forward(n0, o0, array<vec4f, 4>(acc0, acc1, acc2, acc3));
}

@compute @workgroup_size(16, 4)
fn backward_input(@builtin(global_invocation_id) gid: vec3u) {
  let g = gid.x;
  let n0 = gid.y * 4u;
  if (g >= p.KW || n0 >= p.N) { return; }
  let r0 = row(n0, 0u, p.OUT);
  let r1 = row(n0, 1u, p.OUT);
  let r2 = row(n0, 2u, p.OUT);
  let r3 = row(n0, 3u, p.OUT);
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var o = p.k0; o < min(p.OUT, p.k0 + p.kn); o++) {
    let q = unpack(w[o * p.KW + g]) * s[o];
    acc0 += a[r0 + o] * q;
    acc1 += a[r1 + o] * q;
    acc2 += a[r2 + o] * q;
    acc3 += a[r3 + o] * q;
  }
  store_backward(n0, 4u * g, array<vec4f, 4>(acc0, acc1, acc2, acc3));
}

@compute @workgroup_size(16, 4)
fn backward_input_vec4(@builtin(global_invocation_id) gid: vec3u) {
  let g = gid.x;
  let n0 = gid.y * 4u;
  if (g >= p.KW || n0 >= p.N) { return; }
  let r0 = row(n0, 0u, p.OUT) / 4u;
  let r1 = row(n0, 1u, p.OUT) / 4u;
  let r2 = row(n0, 2u, p.OUT) / 4u;
  let r3 = row(n0, 3u, p.OUT) / 4u;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var o4 = p.k0 / 4u; o4 < min(p.OUT, p.k0 + p.kn) / 4u; o4++) {
    let o = 4u * o4;
    let q0 = unpack(w[o * p.KW + g]) * s[o];
    let q1 = unpack(w[(o + 1u) * p.KW + g]) * s[o + 1u];
    let q2 = unpack(w[(o + 2u) * p.KW + g]) * s[o + 2u];
    let q3 = unpack(w[(o + 3u) * p.KW + g]) * s[o + 3u];
    let d0 = a4[r0 + o4];
    let d1 = a4[r1 + o4];
    let d2 = a4[r2 + o4];
    let d3 = a4[r3 + o4];
    acc0 += d0.x * q0 + d0.y * q1 + d0.z * q2 + d0.w * q3;
    acc1 += d1.x * q0 + d1.y * q1 + d1.z * q2 + d1.w * q3;
    acc2 += d2.x * q0 + d2.y * q1 + d2.z * q2 + d2.w * q3;
    acc3 += d3.x * q0 + d3.y * q1 + d3.z * q2 + d3.w * q3;
  }
  store_backward(n0, 4u * g, array<vec4f, 4>(acc0, acc1, acc2, acc3));
}
