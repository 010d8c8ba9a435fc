// attention_dq_subgroup.wgsl — attention's dQ pass for CPU adapters with subgroups of 8 lanes (llvmpipe): what
// attention_bwd.wgsl's dq_rows computes (dQ = scale·dS·K, dS = P ⊙ (dP − Δ), P recomputed from the saved
// logsumexp), with each key's K and V rows shared across the subgroup as attention_fwd_subgroup.wgsl does.
//
// A workgroup is one subgroup of 8 invocations covering 16 consecutive query rows of one (b, h), 2 per lane. Per
// key s, lane l loads the vec4s d ≡ l (mod 8) of K's and V's row s, and `subgroupShuffle` from lane d mod 8 hands
// every lane vec4 d (twice for K: the score and the gradient; 4 loads per lane per key at D 64 where dq_rows
// makes 48). The key loop runs over the union of the 16 rows' visible ranges (key_span, from uniform values);
// a key a row does not see gives it dS = 0. Each row sums the same terms in the same order as dq_rows.
//
// attention.ts runs it with the head-dim loops unrolled (src/gpu/unroll.ts): the shuffles' lanes `d % 8u` and
// slots `d / 8u` are then literals and the per-row arrays registers.
//
// Bindings (common/attention_bwd_io.wgsl), layout and Params: attention_bwd.wgsl's, bindings 1–7 (dq_dk is dq);
// p.rows is unused.
// Dispatch: (ceil(TQ / 16), B·H); once per window [p.win_lo, p.win_hi) of the keys as dq_rows (a later window
//           with p.accumulate ≠ 0 adds to dq).
// requires: common/attention_bwd_io.wgsl, common/attention_range.wgsl, common/attention_slots.wgsl
// enables: subgroups

@compute @workgroup_size(8)
fn dq_subgroup(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let l = lid.x;
  let rp = row_pair(wid, l);
  let has_a = rp.has_a;
  let has_b = rp.has_b;
  let row_a = rp.row_a;
  let row_b = rp.row_b;
  let kv0 = (rp.b * p.HKV + rp.h / (p.H / p.HKV)) * p.TK;
  let span = key_span(wid);
  if (p.accumulate != 0u && span.y <= span.x) {
    return; // no visible key in this window: dq stays as earlier windows left it
  }
  let sta = row_stats(row_a);
  let stb = row_stats(row_b);
  let la = sta.x;
  let dla = sta.y;
  let lb = stb.x;
  let dlb = stb.y;

  var qa: Row;
  var qb: Row;
  var oa: Row;
  var ob: Row;
  var ga: Row; // dq's sums start at 0, as function variables do
  var gb: Row;
  load_q_dout(row_a, &qa, &oa);
  load_q_dout(row_b, &qb, &ob);
  for (var s = span.x; s < span.y; s++) {
    let base = (kv0 + s) * D4;
    let ks = k_slots(base, l);
    let vs = v_slots(base, l);
    var xa = vec4f(0.0);
    var xb = vec4f(0.0);
    var pa = vec4f(0.0);
    var pb = vec4f(0.0);
    for (var d = 0u; d < D4; d++) {
      let kk = subgroupShuffle(slot(ks[0], ks[1], ks[2], ks[3], d / 8u), d % 8u);
      let vv = subgroupShuffle(slot(vs[0], vs[1], vs[2], vs[3], d / 8u), d % 8u);
      xa += qa[d] * kk;
      xb += qb[d] * kk;
      pa += oa[d] * vv;
      pb += ob[d] * vv;
    }
    let sees = row_pair_sees(rp, s);
    let va = sees.x;
    let vb = sees.y;
    let dsa = select(0.0, exp2(hsum(xa) - la) * (hsum(pa) - dla), va);
    let dsb = select(0.0, exp2(hsum(xb) - lb) * (hsum(pb) - dlb), vb);
    for (var d = 0u; d < D4; d++) {
      let kk = subgroupShuffle(slot(ks[0], ks[1], ks[2], ks[3], d / 8u), d % 8u);
      ga[d] += dsa * kk;
      gb[d] += dsb * kk;
    }
  }
  if (has_a) {
    write_dq(row_a, &ga);
  }
  if (has_b) {
    write_dq(row_b, &gb);
  }
}
