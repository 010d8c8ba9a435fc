// attention_fwd_subgroup.wgsl — attention's forward for CPU adapters with subgroups of 8 lanes (llvmpipe): what
// attention_fwd.wgsl's fwd_rows computes (the same bindings, parameters, visibility rules and online softmax in
// log2 units), with each key's K and V rows shared across the subgroup instead of loaded by every invocation.
//
// A workgroup is one subgroup of 8 invocations covering 16 consecutive query rows of one (b, h): lane l takes rows
// 16·x + 2l and 16·x + 2l + 1. Per key s, lane l loads the vec4s d ≡ l (mod 8) of K's row s and of V's row s (one
// per 8 of the head dim: 4 loads at D 64 where fwd_rows makes 32), and `subgroupShuffle` from lane d mod 8
// hands every lane vec4 d: with the lane a literal, on llvmpipe an extract and a splat, no memory access. The key
// loop runs over the union of the 16 rows' visible ranges (common/attention_slots.wgsl's key_span, computed from
// uniform values, as the shuffles need); a key a row does not see weighs 0 for it (a select, no branch). Each key
// rescales the accumulators (no blocks of keys as in fwd_rows), so sums differ from fwd_rows' in rounding only.
//
// attention.ts runs it with the head-dim loops `for (var d = 0u; d < D4; d++)` unrolled (src/gpu/unroll.ts): the
// shuffles' lanes `d % 8u` and slots `d / 8u` are then literals and the per-row arrays registers. (The looped
// source, which the registry compiles, is valid WGSL but never dispatched.)
//
// Bindings, layout and Params: attention_fwd.wgsl's (common/attention_fwd_io.wgsl); p.rows is unused.
// Dispatch: (ceil(TQ / 16), B·H); once per window [p.win_lo, p.win_hi) of the keys as fwd_rows (a later window
//           with p.accumulate ≠ 0 continues each row from its o and lse, and leaves a row that sees no key of the
//           window as it was).
// requires: common/attention_fwd_io.wgsl, common/attention_range.wgsl, common/attention_slots.wgsl
// enables: subgroups

@compute @workgroup_size(8)
fn fwd_subgroup(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let l = lid.x;
  let rp = row_pair(wid, l);
  let has_a = rp.has_a;
  let has_b = rp.has_b;
  let row_a = rp.row_a;
  let row_b = rp.row_b;
  let kv0 = (rp.b * p.HKV + rp.h / (p.H / p.HKV)) * p.TKS;
  let span = key_span(wid);
  if (p.accumulate != 0u && span.y <= span.x) {
    return; // no key of this window is visible to any of the 16 rows: they stay as earlier windows left them
  }

  var qa: Row;
  var qb: Row;
  var acc_a: Row;
  var acc_b: Row;
  load_query(row_a, &qa);
  load_query(row_b, &qb);
  var ma = NEG;
  var mb = NEG;
  var la = 0.0;
  var lb = 0.0;
  if (p.accumulate != 0u) {
    if (has_a) {
      resume(row_a, &acc_a, &ma, &la);
    }
    if (has_b) {
      resume(row_b, &acc_b, &mb, &lb);
    }
  }
  var seen_a = false;
  var seen_b = false;
  for (var s = span.x; s < span.y; s++) {
    let base = (kv0 + s) * D4;
    let ks = k_slots(base, l);
    let vs = v_slots(base, l);
    var da = vec4f(0.0);
    var db = vec4f(0.0);
    for (var d = 0u; d < D4; d++) {
      let kk = subgroupShuffle(slot(ks[0], ks[1], ks[2], ks[3], d / 8u), d % 8u);
      da += qa[d] * kk;
      db += qb[d] * kk;
    }
    let sees = row_pair_sees(rp, s);
    let va = sees.x;
    let vb = sees.y;
    seen_a = seen_a || va;
    seen_b = seen_b || vb;
    let sa = hsum(da);
    let sb = hsum(db);
    let mna = select(ma, max(ma, sa), va);
    let mnb = select(mb, max(mb, sb), vb);
    let ca = exp2(ma - mna);
    let cb = exp2(mb - mnb);
    let pa = select(0.0, exp2(sa - mna), va);
    let pb = select(0.0, exp2(sb - mnb), vb);
    la = la * ca + pa;
    lb = lb * cb + pb;
    ma = mna;
    mb = mnb;
    for (var d = 0u; d < D4; d++) {
      let vv = subgroupShuffle(slot(vs[0], vs[1], vs[2], vs[3], d / 8u), d % 8u);
      acc_a[d] = acc_a[d] * ca + pa * vv;
      acc_b[d] = acc_b[d] * cb + pb * vv;
    }
  }
  // a later window that showed a row none of its keys leaves it as it was
  if (has_a && (seen_a || p.accumulate == 0u)) {
    write_row(row_a, &acc_a, ma, la);
  }
  if (has_b && (seen_b || p.accumulate == 0u)) {
    write_row(row_b, &acc_b, mb, lb);
  }
}
