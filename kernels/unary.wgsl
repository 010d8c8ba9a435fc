// unary.wgsl — elementwise y = f(x) and its backward dx = dy · f'(·), f chosen by override OP:
//   0 neg, 1 exp, 2 log, 3 sqrt, 4 rsqrt, 5 square, 6 relu, 7 silu, 8 gelu (tanh form), 9 sigmoid,
//   10 logsigmoid, 11 softplus, 12 tanh.
//
// Bindings: 0 uniform Params { n: u32 }; 1 x: array<f32> (read); 2 out: array<f32> (read_write);
//           3 dy: array<f32> (read; `grad` only).
// Entries:  main: out[i] = f(x[i]).
//           grad: out[i] = dy[i] · f'(s), where s = x[i] holds what the op saved: the output y for exp,
//                 sqrt and rsqrt; the input x for the others (neg ignores it). sigmoid and tanh use the
//                 input: σ(x)σ(−x) and 4e/(1 + e)² (e = exp(−2|x|)) stay accurate in the tails, where
//                 y(1 − y) and 1 − y² cancel.
// Layout:   flat, contiguous, n elements each.
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y * num_workgroups.x * 256.
//
// Stable forms: sigmoid through exp(−|x|) (never overflows); logsigmoid(x) = min(x, 0) − log1p(exp(−|x|)),
// softplus(x) = max(x, 0) + log1p(exp(−|x|)) with log1p evaluated by its atanh series on [0, 1] (accurate
// for tiny arguments, where log(1 + z) rounds to 0); tanh by its Taylor series near 0 and
// 1 − 2 / (exp(2|x|) + 1) beyond (saturates to ±1, no overflow, no NaN);
// gelu(x) = 0.5·x·(1 + tanh(u)) = x·sigmoid(2u), u = √(2/π)(x + 0.044715x³).
// requires: common/grid.wgsl, common/sigmoid.wgsl

struct Params { n: u32 }

override OP: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_C: f32 = 0.044715;

// log(1 + z) for z in [0, 1]: 2·atanh(w), w = z / (2 + z) ≤ 1/3, as an odd series in w (truncation < 1e-10).
fn log1p01(z: f32) -> f32 {
  let w = z / (2.0 + z);
  let w2 = w * w;
  var s = 1.0 / 17.0;
  s = 1.0 / 15.0 + w2 * s;
  s = 1.0 / 13.0 + w2 * s;
  s = 1.0 / 11.0 + w2 * s;
  s = 1.0 / 9.0 + w2 * s;
  s = 1.0 / 7.0 + w2 * s;
  s = 1.0 / 5.0 + w2 * s;
  s = 1.0 / 3.0 + w2 * s;
  s = 1.0 + w2 * s;
  return 2.0 * w * s;
}

fn tanh_stable(v: f32) -> f32 {
  let a = abs(v);
  if (a < 0.3) {
    // x − x³/3 + 2x⁵/15 − 17x⁷/315 + 62x⁹/2835 − 1382x¹¹/155925 + 21844x¹³/6081075
    let v2 = v * v;
    var s = 21844.0 / 6081075.0;
    s = -1382.0 / 155925.0 + v2 * s;
    s = 62.0 / 2835.0 + v2 * s;
    s = -17.0 / 315.0 + v2 * s;
    s = 2.0 / 15.0 + v2 * s;
    s = -1.0 / 3.0 + v2 * s;
    s = 1.0 + v2 * s;
    return v * s;
  }
  let t = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
  return select(-t, t, v >= 0.0);
}

fn forward(v: f32) -> f32 {
  switch (OP) {
    case 0u: { return -v; }
    case 1u: { return exp(v); }
    case 2u: { return log(v); }
    case 3u: { return sqrt(v); }
    case 4u: { return 1.0 / sqrt(v); }
    case 5u: { return v * v; }
    case 6u: { return max(v, 0.0); }
    case 7u: { return v * sigmoid(v); }
    case 8u: { return v * sigmoid(2.0 * SQRT_2_OVER_PI * (v + GELU_C * v * v * v)); }
    case 9u: { return sigmoid(v); }
    case 10u: { return min(v, 0.0) - log1p01(exp(-abs(v))); }
    case 11u: { return max(v, 0.0) + log1p01(exp(-abs(v))); }
    default: { return tanh_stable(v); }
  }
}

// f'(·) · d, where s is the saved value (y or x, see the header).
fn backward(s: f32, d: f32) -> f32 {
  switch (OP) {
    case 0u: { return -d; }
    case 1u: { return d * s; }
    case 2u: { return d / s; }
    case 3u: { return d * 0.5 / s; }
    case 4u: { return d * -0.5 * s * s * s; }
    case 5u: { return d * 2.0 * s; }
    case 6u: { return select(0.0, d, s > 0.0); }
    case 7u: {
      let g = sigmoid(s);
      return d * g * (1.0 + s * (1.0 - g));
    }
    case 8u: {
      // d/dx x·σ(2u) = σ(2u) + x·σ(2u)(1 − σ(2u))·2u'; past |x| = 10 it is 1 or 0 to f32 precision (and x·u'
      // may overflow while σ(1 − σ) underflows, so take the limit there).
      if (abs(s) > 10.0) { return select(0.0, d, s > 0.0); }
      let g = sigmoid(2.0 * SQRT_2_OVER_PI * (s + GELU_C * s * s * s));
      let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * s * s);
      return d * (g + 2.0 * s * du * g * (1.0 - g));
    }
    case 9u: { return d * sigmoid(s) * sigmoid(-s); }
    case 10u: { return d * sigmoid(-s); }
    case 11u: { return d * sigmoid(s); }
    default: {
      // 1 − tanh²(x) = 4e / (1 + e)², e = exp(−2|x|): accurate in the tails, where 1 − y² would cancel.
      let e = exp(-2.0 * abs(s));
      let q = 1.0 + e;
      return d * 4.0 * e / (q * q);
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  out[i] = forward(x[i]);
}

@compute @workgroup_size(256)
fn grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  out[i] = backward(x[i], dy[i]);
}
