// dpo_loss.wgsl — the DPO-family losses of SPEC.md on per-sequence log-probs, forward and backward, in one
// workgroup (the batch is tiny: B pairs, strided over WG invocations, batch sums by shared-memory tree reduction).
//
// Specialisation (override constants): TYPES = bit mask of the active loss types (bit t = type id t below, each at
// most once; loss weights per type in p.w), FDIV = f-divergence score (0 reverse_kl, 1 forward_kl,
// 2 js_divergence, 3 alpha_divergence), WEIGHTED = multiply each pair's losses by its WPO weight,
// LEN_I32 = bit 0 / bit 1 set when the chosen / rejected token counts are stored as i32 (else f32).
//
// Bindings (forward uses 1..8, backward and sort 1):
//   0 uniform Params (below)
//   1 x: array<f32> (read_write): the packed inputs and scratch, regions of B floats at r*B for region r:
//       0 pc, 1 pr, 2 rc, 3 rr (policy / reference chosen / rejected log-probs; rc = rr = 0 when reference-free),
//       4 len_c, 5 len_r (token counts), 6 WPO pair weights,
//       7..10 sorted values (aot: pc-pr, rc-rr; aot_pair: c, r), 11..14 their ranks (as f32),
//       15 d/dpc, 16 d/dpr (backward output), 17..18 dy (backward input: 1 value, or one per `losses` entry);
//       then x[19B] = the nll / sft scalar, x[19B+1] = d/dnll (backward output), x[19B+2] = the bco running
//       mean the forward used (the backward's constant).
//   2 stats: array<f32> [8] (read_write): rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins,
//       logps/chosen, logps/rejected, bco batch reward mean, bco running mean used.
//   3 state: array<f32> [2] (read_write): bco_pair running mean and its number of updates (training forwards
//       update it before the loss uses it).
//   4 by_type: array<f32> [Σ entries]: each active type's per-entry losses (× WPO weight), types in id order,
//       B entries each (2B for kto_pair: chosen parts then rejected parts).
//   5 losses: array<f32> [B] (2B when kto_pair is the only type): Σₖ wₖ·lossₖ per entry, kto_pair's two parts of
//       a pair averaged when it is in a list, so that mean(losses) = loss − rpo·nll.
//   6 loss: array<f32> [1] = Σₖ wₖ·mean(lossₖ) + rpo·nll.
//   7 chosen_rewards, 8 rejected_rewards: array<f32> [B] = β·c, β·r (per token when ipo is the only type).
// Dispatch: forward, backward: one workgroup of WG invocations. sort (aot, aot_pair only; before forward, whose
//           ranks backward reads): grid1d(B, 64), invocation i ranks pair i (a loop of B: lavapipe stops an
//           invocation after about 65 535 loop iterations in all, and one workgroup ranking every pair in forward and
//           backward, B²/WG iterations each, stopped past ~4,100 pairs).
// Backward: d/dpc, d/dpr, d/dnll of Σⱼ uⱼ·entryⱼ where u comes from dy: dy_len = 0 → dy is d/d loss, so
// u = dy·wₖ/Nₖ (and rpo·dy reaches nll); dy_len > 0 → dy is d/d losses (length dy_len), u = wₖ·dy[j mod dy_len]
// (× ½ for kto_pair in a list). The bco running mean is the constant the forward used (x[19B+2]).
// requires: common/grid.wgsl, common/sigmoid.wgsl

override TYPES: u32 = 1u;
override FDIV: u32 = 0u;
override WEIGHTED: bool = false;
override LEN_I32: u32 = 0u;

const WG: u32 = 256u;
const NTYPES: u32 = 16u;
const T_SIGMOID: u32 = 0u;
const T_ROBUST: u32 = 1u;
const T_HINGE: u32 = 2u;
const T_IPO: u32 = 3u;
const T_EXO: u32 = 4u;
const T_KTO: u32 = 5u;
const T_BCO: u32 = 6u;
const T_SPPO: u32 = 7u;
const T_NCA: u32 = 8u;
const T_AOT: u32 = 9u;
const T_AOT_PAIR: u32 = 10u;
const T_APO_ZERO: u32 = 11u;
const T_APO_DOWN: u32 = 12u;
const T_DISCOPOP: u32 = 13u;
const T_SIGMOID_NORM: u32 = 14u;
const T_SFT: u32 = 15u;

const R_PC: u32 = 0u;
const R_PR: u32 = 1u;
const R_RC: u32 = 2u;
const R_RR: u32 = 3u;
const R_LC: u32 = 4u;
const R_LR: u32 = 5u;
const R_W: u32 = 6u;
const R_SORTED: u32 = 7u; // + 2k (a), + 2k + 1 (b), for sort k (0 aot, 1 aot_pair)
const R_RANK: u32 = 11u; // same layout
const R_GC: u32 = 15u;
const R_GR: u32 = 16u;
const R_DY: u32 = 17u;
const R_END: u32 = 19u;

struct Params {
  w: array<vec4f, 4>, // loss weight of each type id
  B: u32,
  train: u32, // forward: update the bco running mean
  dy_len: u32, // backward: 0 = dy is d/d loss; else the length of `losses`
  pad: u32,
  beta: f32,
  eps: f32, // label_smoothing
  alpha: f32, // f_alpha_divergence_coef
  tau: f32, // discopop_tau
  rpo: f32, // rpo_alpha (0 when unset)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> by_type: array<f32>;
@group(0) @binding(5) var<storage, read_write> losses: array<f32>;
@group(0) @binding(6) var<storage, read_write> loss: array<f32>;
@group(0) @binding(7) var<storage, read_write> chosen_rewards: array<f32>;
@group(0) @binding(8) var<storage, read_write> rejected_rewards: array<f32>;

var<workgroup> red: array<vec4f, WG>;

// ---- numerics --------------------------------------------------------------------------------------------------

// log(1 + y) for y in [0, 1], accurate for tiny y.
fn log1p_unit(y: f32) -> f32 {
  let u = 1.0 + y;
  if (u == 1.0) { return y; }
  return log(u) * (y / (u - 1.0));
}

fn logsig(v: f32) -> f32 {
  return min(v, 0.0) - log1p_unit(exp(-abs(v)));
}

// The f-divergence score s(v) and its derivative s'(v).
fn score(v: f32) -> vec2f {
  switch FDIV {
    case 1u: { // forward_kl: −e^(−v), exponent clamped at 80 as alpha's (forward KL is alpha at a = 0)
      if (-v <= 80.0) {
        let e = exp(-v);
        return vec2f(-e, e);
      }
      return vec2f(-exp(80.0), 0.0);
    }
    case 2u: { // js_divergence: log σ(v)
      return vec2f(logsig(v), sigmoid(-v));
    }
    case 3u: { // alpha_divergence: e^((a−1)v)/(a−1), exponent clamped at 80 (no gradient where clamped)
      let k = (p.alpha - 1.0) * v;
      if (k <= 80.0) {
        let e = exp(k);
        return vec2f(e / (p.alpha - 1.0), e);
      }
      return vec2f(exp(80.0) / (p.alpha - 1.0), 0.0);
    }
    default: { return vec2f(v, 1.0); }
  }
}

// −(1−ε)·log σ(v) − ε·log σ(−v) and its derivative (sigmoid, aot, aot_pair).
fn smoothed(v: f32) -> vec2f {
  let e = p.eps;
  return vec2f(-(1.0 - e) * logsig(v) - e * logsig(-v), -(1.0 - e) * sigmoid(-v) + e * sigmoid(v));
}

// ---- helpers ---------------------------------------------------------------------------------------------------

fn has(t: u32) -> bool { return ((TYPES >> t) & 1u) != 0u; }
fn weight_of(t: u32) -> f32 { return p.w[t / 4u][t % 4u]; }
fn entries(t: u32) -> u32 { return select(p.B, 2u * p.B, t == T_KTO); }
fn entry_offset(t: u32) -> u32 {
  var o = 0u;
  for (var k = 0u; k < t; k++) {
    if (has(k)) { o += entries(k); }
  }
  return o;
}
fn single_kto() -> bool { return TYPES == (1u << T_KTO); }
fn ipo_only() -> bool { return TYPES == (1u << T_IPO); }
fn at(region: u32, i: u32) -> f32 { return x[region * p.B + i]; }
fn nll_index() -> u32 { return R_END * p.B; }

fn count_at(region: u32, bit: u32, i: u32) -> f32 {
  let v = x[region * p.B + i];
  if ((LEN_I32 & bit) != 0u) { return f32(bitcast<i32>(v)); }
  return v;
}

// Sum over the workgroup (call from uniform control flow; every invocation gets the total).
fn wg_sum(v: vec4f, lid: u32) -> vec4f {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

struct Pair {
  c: f32, // pc − rc
  r: f32, // pr − rr
  sc: f32, // s(c)
  sr: f32,
  dsc: f32, // s'(c)
  dsr: f32,
  lc: f32, // token counts
  lr: f32,
  w: f32, // WPO weight (1 unless WEIGHTED)
}

fn load_pair(i: u32) -> Pair {
  let c = at(R_PC, i) - at(R_RC, i);
  let r = at(R_PR, i) - at(R_RR, i);
  let a = score(c);
  let b = score(r);
  var w = 1.0;
  if (WEIGHTED) { w = at(R_W, i); }
  return Pair(c, r, a.x, b.x, a.y, b.y, count_at(R_LC, 1u, i), count_at(R_LR, 2u, i), w);
}

// ---- per-pair losses -------------------------------------------------------------------------------------------

// (loss, d loss/dc, d loss/dr) of one pair for every type whose loss depends on that pair alone; c and r are the raw
// log-ratios (the score's derivative is applied here). sft's value is the nll scalar (its gradient goes to nll).
fn pair_loss(t: u32, q: Pair, delta: f32, nll: f32) -> vec3f {
  let beta = p.beta;
  let eps = p.eps;
  let v = beta * (q.sc - q.sr); // β·z under the score
  let vc = beta * q.dsc; // dv/dc
  let vr = -beta * q.dsr; // dv/dr
  switch t {
    case T_SIGMOID: {
      let f = smoothed(v);
      return vec3f(f.x, f.y * vc, f.y * vr);
    }
    case T_ROBUST: {
      let k = 1.0 / (1.0 - 2.0 * eps);
      let l = (-(1.0 - eps) * logsig(v) + eps * logsig(-v)) * k;
      let g = (-(1.0 - eps) * sigmoid(-v) - eps * sigmoid(v)) * k;
      return vec3f(l, g * vc, g * vr);
    }
    case T_HINGE: {
      let h = 1.0 - v;
      let g = select(0.0, -1.0, h > 0.0);
      return vec3f(max(h, 0.0), g * vc, g * vr);
    }
    case T_IPO: {
      let a = score(q.c / q.lc);
      let b = score(q.r / q.lr);
      let e = a.x - b.x - 0.5 / beta;
      return vec3f(e * e, 2.0 * e * a.y / q.lc, -2.0 * e * b.y / q.lr);
    }
    case T_EXO: {
      let q1 = sigmoid(v) * sigmoid(-v);
      let l1 = log(1.0 - eps);
      let l0 = log(eps);
      let l = sigmoid(v) * (logsig(v) - l1) + sigmoid(-v) * (logsig(-v) - l0);
      let g = q1 * (v - l1 + l0);
      return vec3f(l, g * vc, g * vr);
    }
    case T_BCO: {
      let a = beta * q.sc - delta;
      let b = beta * q.sr - delta;
      return vec3f(-logsig(a) - logsig(-b), -sigmoid(-a) * beta * q.dsc, sigmoid(b) * beta * q.dsr);
    }
    case T_SPPO: {
      let a = q.sc - 0.5 / beta;
      let b = q.sr + 0.5 / beta;
      return vec3f(a * a + b * b, 2.0 * a * q.dsc, 2.0 * b * q.dsr);
    }
    case T_NCA: {
      let a = beta * q.sc;
      let b = beta * q.sr;
      let l = -logsig(a) - 0.5 * logsig(-a) - 0.5 * logsig(-b);
      return vec3f(l, (-sigmoid(-a) + 0.5 * sigmoid(a)) * beta * q.dsc, 0.5 * sigmoid(b) * beta * q.dsr);
    }
    case T_APO_ZERO: { // raw log-ratios
      let a = beta * q.c;
      let b = beta * q.r;
      return vec3f(
        1.0 - sigmoid(a) + sigmoid(b),
        -sigmoid(a) * sigmoid(-a) * beta,
        sigmoid(b) * sigmoid(-b) * beta,
      );
    }
    case T_APO_DOWN: { // σ(βc) on the raw log-ratio, σ(βz) under the score
      let a = beta * q.c;
      let qv = sigmoid(v) * sigmoid(-v);
      return vec3f(sigmoid(a) + 1.0 - sigmoid(v), sigmoid(a) * sigmoid(-a) * beta - qv * vc, -qv * vr);
    }
    case T_DISCOPOP: {
      let y = v / p.tau;
      let m1 = sigmoid(-y); // 1 − m
      let dm = sigmoid(y) * m1 / p.tau; // dm/dv
      let e = exp(-v + logsig(y)); // e^(−v)·m without overflow
      let l = -logsig(v) * m1 + e;
      let g = -sigmoid(-v) * m1 + logsig(v) * dm + e * (m1 / p.tau - 1.0);
      return vec3f(l, g * vc, g * vr);
    }
    case T_SIGMOID_NORM: {
      let y = beta * (q.sc / q.lc - q.sr / q.lr);
      let g = -sigmoid(-y) * beta;
      return vec3f(-logsig(y), g * q.dsc / q.lc, -g * q.dsr / q.lr);
    }
    case T_SFT: { return vec3f(nll, 0.0, 0.0); }
    default: { return vec3f(0.0); }
  }
}

// ---- aot sorts -------------------------------------------------------------------------------------------------

// The two sequences sort k orders: aot (k = 0) pc − pr and rc − rr; aot_pair (k = 1) c and r.
fn sort_values(k: u32, i: u32) -> vec2f {
  if (k == 0u) { return vec2f(at(R_PC, i) - at(R_PR, i), at(R_RC, i) - at(R_RR, i)); }
  return vec2f(at(R_PC, i) - at(R_RC, i), at(R_PR, i) - at(R_RR, i));
}

// Stable ascending rank sort of each active aot type's sequences into the scratch regions: invocation i finds the
// ranks of pair i's two values (O(B) each) and stores them and the values at those ranks.
@compute @workgroup_size(64)
fn sort(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 64u);
  let B = p.B;
  if (i >= B) { return; }
  for (var k = 0u; k < 2u; k++) {
    if (!has(T_AOT + k)) { continue; }
    let v = sort_values(k, i);
    var ra = 0u;
    var rb = 0u;
    for (var j = 0u; j < B; j++) {
      let u = sort_values(k, j);
      ra += select(0u, 1u, u.x < v.x || (u.x == v.x && j < i));
      rb += select(0u, 1u, u.y < v.y || (u.y == v.y && j < i));
    }
    x[(R_SORTED + 2u * k) * B + ra] = v.x;
    x[(R_SORTED + 2u * k + 1u) * B + rb] = v.y;
    x[(R_RANK + 2u * k) * B + i] = f32(ra);
    x[(R_RANK + 2u * k + 1u) * B + i] = f32(rb);
  }
}

// (loss, d loss/d d) at sorted position j of sort k, d = sorted a − sorted b.
fn aot_at(k: u32, j: u32) -> vec2f {
  let f = smoothed(p.beta * (at(R_SORTED + 2u * k, j) - at(R_SORTED + 2u * k + 1u, j)));
  return vec2f(f.x, f.y * p.beta);
}

fn entry_weight(j: u32) -> f32 {
  if (WEIGHTED) { return at(R_W, j % p.B); }
  return 1.0;
}

// ---- forward ---------------------------------------------------------------------------------------------------

@compute @workgroup_size(WG)
fn forward(@builtin(local_invocation_index) lid: u32) {
  let B = p.B;
  let bf = f32(B);
  let beta = p.beta;
  let nll = x[nll_index()];

  // rewards, metric sums and the batch sums of the scores
  var m0 = vec4f(0.0);
  var m1 = vec4f(0.0);
  for (var i = lid; i < B; i += WG) {
    let q = load_pair(i);
    var cr = beta * q.c;
    var rr = beta * q.r;
    var lpc = at(R_PC, i);
    var lpr = at(R_PR, i);
    if (ipo_only()) {
      cr /= q.lc;
      rr /= q.lr;
      lpc /= q.lc;
      lpr /= q.lr;
    }
    chosen_rewards[i] = cr;
    rejected_rewards[i] = rr;
    m0 += vec4f(cr, rr, select(0.0, 1.0, cr > rr), cr - rr);
    m1 += vec4f(lpc, lpr, q.sc, q.sr);
  }
  let s0 = wg_sum(m0, lid);
  let s1 = wg_sum(m1, lid);

  // bco_pair: the running mean of the batch means of cat(β·s(c), β·s(r)), updated before use when training
  var delta = 0.0;
  var batch_mean = 0.0;
  if (has(T_BCO)) {
    batch_mean = beta * (s1.z / (2.0 * bf) + s1.w / (2.0 * bf)); // means first: β·Σ can pass f32's range
    let m = state[0];
    var n = state[1];
    delta = m;
    if (p.train != 0u) {
      n = n + 1.0;
      delta = m + (batch_mean - m) / n;
    }
    storageBarrier(); // every invocation has read the state before it is overwritten
    if (lid == 0u) {
      state[0] = delta;
      state[1] = n;
    }
  }
  // kto_pair: KLc, KLr
  let klc = max(s1.z / bf, 0.0);
  let klr = max(s1.w / bf, 0.0);

  var total = 0.0;
  for (var i = lid; i < B; i += WG) {
    let q = load_pair(i);
    var comb = 0.0;
    var comb2 = 0.0;
    for (var t = 0u; t < NTYPES; t++) {
      if (!has(t)) { continue; }
      let off = entry_offset(t);
      let wk = weight_of(t);
      if (t == T_KTO) {
        let a = (1.0 - sigmoid(beta * (q.sc - klr))) * q.w;
        let b = (1.0 - sigmoid(beta * (klc - q.sr))) * q.w;
        by_type[off + i] = a;
        by_type[off + B + i] = b;
        total += wk * (a + b) / (2.0 * bf);
        if (single_kto()) {
          comb += wk * a;
          comb2 += wk * b;
        } else {
          comb += wk * 0.5 * (a + b);
        }
      } else {
        var l: f32;
        if (t == T_AOT || t == T_AOT_PAIR) {
          l = aot_at(t - T_AOT, i).x * q.w;
        } else {
          l = pair_loss(t, q, delta, nll).x * q.w;
        }
        by_type[off + i] = l;
        total += wk * l / bf;
        comb += wk * l;
      }
    }
    losses[i] = comb;
    if (single_kto()) { losses[B + i] = comb2; }
  }
  let tot = wg_sum(vec4f(total, 0.0, 0.0, 0.0), lid).x;
  if (lid == 0u) {
    loss[0] = tot + select(0.0, p.rpo * nll, p.rpo != 0.0);
    stats[0] = s0.x / bf;
    stats[1] = s0.y / bf;
    stats[2] = s0.z / bf;
    stats[3] = s0.w / bf;
    stats[4] = s1.x / bf;
    stats[5] = s1.y / bf;
    stats[6] = batch_mean;
    stats[7] = delta;
    x[nll_index() + 2u] = delta;
  }
}

// ---- backward --------------------------------------------------------------------------------------------------

// The upstream gradient of entry j of type t (before the WPO weight).
fn upstream(t: u32, j: u32) -> f32 {
  let dy = R_DY * p.B;
  let n = entries(t);
  if (p.dy_len == 0u) { return x[dy] * weight_of(t) / f32(n); }
  if (p.dy_len == n) { return x[dy + j] * weight_of(t); }
  return x[dy + j % p.dy_len] * weight_of(t) * 0.5; // kto_pair in a list: its two parts of a pair are averaged
}

@compute @workgroup_size(WG)
fn backward(@builtin(local_invocation_index) lid: u32) {
  let B = p.B;
  let bf = f32(B);
  let beta = p.beta;
  let nll = x[nll_index()];
  let delta = x[nll_index() + 2u];

  var m = vec4f(0.0);
  for (var i = lid; i < B; i += WG) {
    let q = load_pair(i);
    m += vec4f(q.sc, q.sr, 0.0, 0.0);
  }
  let sums = wg_sum(m, lid);
  let klc = max(sums.x / bf, 0.0);
  let klr = max(sums.y / bf, 0.0);

  // kto_pair: the gradients reaching KLc (from the rejected parts) and KLr (from the chosen parts)
  var kc = 0.0;
  var kr = 0.0;
  if (has(T_KTO)) {
    var acc = vec4f(0.0);
    for (var i = lid; i < B; i += WG) {
      let q = load_pair(i);
      let a = beta * (q.sc - klr);
      let b = beta * (klc - q.sr);
      // d(1 − σ(a))/d KLr = σ'(a)·β ; d(1 − σ(b))/d KLc = −σ'(b)·β
      acc += vec4f(
        -upstream(T_KTO, B + i) * q.w * sigmoid(b) * sigmoid(-b) * beta,
        upstream(T_KTO, i) * q.w * sigmoid(a) * sigmoid(-a) * beta,
        0.0,
        0.0,
      );
    }
    let k = wg_sum(acc, lid);
    kc = select(0.0, k.x, sums.x >= 0.0); // the clamp at 0 passes the gradient where mean ≥ 0
    kr = select(0.0, k.y, sums.y >= 0.0);
  }

  var gn = 0.0;
  for (var i = lid; i < B; i += WG) {
    let q = load_pair(i);
    var gc = 0.0;
    var gr = 0.0;
    for (var t = 0u; t < NTYPES; t++) {
      if (!has(t)) { continue; }
      if (t == T_KTO) {
        let a = beta * (q.sc - klr);
        let b = beta * (klc - q.sr);
        let ua = upstream(t, i) * q.w;
        let ub = upstream(t, B + i) * q.w;
        gc += (-ua * sigmoid(a) * sigmoid(-a) * beta + kc / bf) * q.dsc;
        gr += (ub * sigmoid(b) * sigmoid(-b) * beta + kr / bf) * q.dsr;
      } else if (t == T_AOT || t == T_AOT_PAIR) {
        let k = t - T_AOT;
        let ra = u32(at(R_RANK + 2u * k, i));
        let ga = aot_at(k, ra).y * upstream(t, ra) * entry_weight(ra);
        gc += ga;
        if (k == 0u) {
          gr -= ga; // aot sorts pc − pr
        } else {
          let rb = u32(at(R_RANK + 2u * k + 1u, i));
          gr -= aot_at(k, rb).y * upstream(t, rb) * entry_weight(rb);
        }
      } else if (t == T_SFT) {
        gn += upstream(t, i) * q.w;
      } else {
        let u = upstream(t, i) * q.w;
        let g = pair_loss(t, q, delta, nll);
        gc += u * g.y;
        gr += u * g.z;
      }
    }
    x[R_GC * B + i] = gc;
    x[R_GR * B + i] = gr;
  }
  let gsum = wg_sum(vec4f(gn, 0.0, 0.0, 0.0), lid).x;
  if (lid == 0u) {
    x[nll_index() + 1u] = gsum + select(0.0, p.rpo * x[R_DY * B], p.dy_len == 0u);
  }
}
