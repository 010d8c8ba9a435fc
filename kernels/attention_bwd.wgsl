// attention_bwd.wgsl — scaled-dot-product attention backward, flash style: probabilities are recomputed key by
// key from the saved logsumexp, P = exp(q·kᵀ·scale − L), and
//   dV = Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − Δ)  (Δ = rowsum(dO ⊙ O)),  dQ = scale·dS·K,  dK = scale·dSᵀ·Q.
// dQ and dK/dV are separate passes, so every output element is written by exactly one invocation (no atomics,
// deterministic): the dK/dV of a kv head sum over the H / HKV query heads that share it inside one invocation.
// Only (query, key) pairs where the key is visible are visited, so a row that sees no key (L = -inf) never
// enters an exponential: its dq is 0, and a padded key (seen by no query) gets dk = dv = 0.
//
// Bindings (declared in common/attention_bwd_io.wgsl): 0 uniform Params (common/attention_params.wgsl);
//           1 q     [B, H,   TQ, D] f32 as vec4 (read);
//           2 k     [B, HKV, TK, D] f32 as vec4 (read);
//           3 v     [B, HKV, TK, D] f32 as vec4 (read);
//           4 mask  [B, TK] raw 32-bit words, or [B, TK, 2] or [B, TK, 4] segments (read), as in
//             attention_fwd.wgsl (p.mask_kind);
//           5 stats [B, H, TQ, 2] f32 (read): (logsumexp L, Δ) per query row, from attention_delta.wgsl;
//           6 dout  [B, H, TQ, D] f32 as vec4 (read);
//           7 dq_dk (read_write, vec4): dq [B, H, TQ, D] for the dq_* entries, dk [B, HKV, TK, D] for dkv_*;
//           8 dv    [B, HKV, TK, D] f32 as vec4 (read_write; dkv_* entries only).
// Layout, visibility and query alignment: as in attention_fwd.wgsl (D = 4·D4).
//
// Entry points:
//   dq_rows   — one invocation per pair of adjacent query rows (CPU adapters).
//               Dispatch: grid1d(B·H·ceil(TQ/2), 64); p.rows = B·H·ceil(TQ/2); once per window [p.win_lo,
//               p.win_hi) of the keys, later windows (p.accumulate ≠ 0) adding to dq.
//   dkv_rows  — one invocation per pair of adjacent keys of a kv head (CPU adapters).
//               Dispatch: grid1d(B·HKV·ceil(TK/2), 64); p.rows = B·HKV·ceil(TK/2); once per window of the
//               absolute query positions, later windows adding to dk and dv (lavapipe's loop limit: attention.ts).
//   dq_tiled  — one workgroup of 64 per (query tile of 64/NS rows, b·H + h), NS invocations per row each
//               taking every NS-th key, K/V tiles of BC keys staged in workgroup memory, the NS partial dq
//               summed in workgroup memory at the end (GPUs). Dispatch: [ceil(TQ / (64/NS)), B·H].
//   dkv_tiled — one workgroup of 64 per (key tile of 64/NS keys, b·HKV + hk), NS invocations per key each
//               taking every NS-th query row, q/dO tiles of BC query rows and their (L, Δ) staged in workgroup
//               memory, partial dk/dv summed at the end (GPUs). Dispatch: [ceil(TK / (64/NS)), B·HKV].
// Override constants: D4 (head dim / 4, 1..32); tiled entries only: BC (rows of the staged tiles), NS (1, 2,
//                     4, …, 64). Workgroup memory: 2·BC·(D4+1)·16 + 8·BC bytes, and 2·BC·(D4+1) ≥ 32·D4 when
//                     NS > 1 (the merge reuses the tiles).
// requires: common/attention_bwd_io.wgsl, common/attention_range.wgsl, common/grid.wgsl

override BC: u32 = 32u;
override NS: u32 = 4u;

const WG = 64u; // tiled workgroup size

// dq_tiled: a tile of keys and values; dkv_tiled: a tile of query rows and their output gradients
override KS: u32 = D4 + 1u; // row stride of the workgroup tiles (padded against bank conflicts)
var<workgroup> ta: array<vec4f, BC * KS>;
var<workgroup> tb: array<vec4f, BC * KS>;
var<workgroup> tl: array<f32, BC>; // dq_tiled: key visible (1) or padded (0); dkv_tiled: L·log2(e)
var<workgroup> td: array<f32, BC>; // dkv_tiled: Δ

@compute @workgroup_size(64)
fn dq_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = grid1d_index(gid, nwg, 64u);
  if (r >= p.rows) {
    return;
  }
  let pairs = (p.TQ + 1u) / 2u;
  let bh = r / pairs;
  let ia = 2u * (r % pairs);
  let has_b = ia + 1u < p.TQ;
  let h = bh % p.H;
  let b = bh / p.H;
  let kv0 = (b * p.HKV + h / (p.H / p.HKV)) * p.TK;
  let off = p.TK - p.TQ;
  let ra = key_range(b, ia + off);
  let ha = key_hole(b, ia + off);
  var rb = vec2u(0u, 0u);
  var hb = vec2u(0u, 0u);
  if (has_b) {
    rb = key_range(b, ia + 1u + off);
    hb = key_hole(b, ia + 1u + off);
  }
  let hi = max(ra.y, rb.y);
  let row_a = bh * p.TQ + ia;
  let row_b = select(row_a, row_a + 1u, has_b);
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
  let s_lo = max(ra.x, p.win_lo);
  let s_hi = min(hi, p.win_hi);
  if (p.accumulate != 0u && s_hi <= s_lo) {
    return; // no visible key in this window: dq stays as earlier windows left it
  }
  for (var s = s_lo; s < s_hi; s++) {
    let kv = key_ok(b, s);
    let va = kv && s < ra.y && !in_hole(ha, s);
    let vb = kv && s >= rb.x && s < rb.y && !in_hole(hb, s);
    if (!(va || vb)) {
      continue;
    }
    let kb = (kv0 + s) * D4;
    var xa = vec4f(0.0);
    var xb = vec4f(0.0);
    var pa = vec4f(0.0);
    var pb = vec4f(0.0);
    for (var d = 0u; d < D4; d++) {
      let kk = k[kb + d];
      let vv = v[kb + d];
      xa += qa[d] * kk;
      xb += qb[d] * kk;
      pa += oa[d] * vv;
      pb += ob[d] * vv;
    }
    let dsa = select(0.0, exp2(hsum(xa) - la) * (hsum(pa) - dla), va);
    let dsb = select(0.0, exp2(hsum(xb) - lb) * (hsum(pb) - dlb), vb);
    for (var d = 0u; d < D4; d++) {
      let kk = k[kb + d];
      ga[d] += dsa * kk;
      gb[d] += dsb * kk;
    }
  }
  write_dq(row_a, &ga);
  if (has_b) {
    write_dq(row_b, &gb);
  }
}

@compute @workgroup_size(64)
fn dkv_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = grid1d_index(gid, nwg, 64u);
  if (r >= p.rows) {
    return;
  }
  let pairs = (p.TK + 1u) / 2u;
  let bk = r / pairs;
  let sa = 2u * (r % pairs);
  let has_b = sa + 1u < p.TK;
  let hk = bk % p.HKV;
  let b = bk / p.HKV;
  let group = p.H / p.HKV;
  let off = p.TK - p.TQ;
  let key_a = bk * p.TK + sa;
  let key_b = select(key_a, key_a + 1u, has_b);
  let ok_a = key_ok(b, sa);
  let ok_b = has_b && key_ok(b, sa + 1u);
  let qra = query_range(b, sa);
  var qrb = vec2u(0u, 0u);
  if (has_b) {
    qrb = query_range(b, sa + 1u);
  }
  // this dispatch's window of absolute query positions: [t_lo, t_hi) of [qra.x, max(qra.y, qrb.y))
  let t_lo = max(max(qra.x, off), p.win_lo);
  let t_hi = max(min(max(max(qra.y, qrb.y), off), p.win_hi), t_lo);
  let add = p.accumulate != 0u;
  if (add && (!(ok_a || ok_b) || t_hi == t_lo)) {
    return; // nothing of this window reaches these keys: dk, dv stay as earlier windows left them
  }

  var ka: Row;
  var kb: Row;
  var va: Row;
  var vb: Row;
  var gka: Row;
  var gkb: Row;
  var gva: Row;
  var gvb: Row;
  var qc: Row; // the current query row and its output gradient, kept for the accumulation loop
  var oc: Row;
  for (var d = 0u; d < D4; d++) {
    ka[d] = k[key_a * D4 + d] * p.scale_log2;
    kb[d] = k[key_b * D4 + d] * p.scale_log2;
    va[d] = v[key_a * D4 + d];
    vb[d] = v[key_b * D4 + d];
    gka[d] = vec4f(0.0);
    gkb[d] = vec4f(0.0);
    gva[d] = vec4f(0.0);
    gvb[d] = vec4f(0.0);
  }
  if (ok_a || ok_b) {
    let ilo = t_lo - off;
    let ihi = t_hi - off;
    for (var g = 0u; g < group; g++) {
      let row0 = (b * p.H + hk * group + g) * p.TQ;
      for (var i = ilo; i < ihi; i++) {
        let t = i + off;
        let sees_a = ok_a && t >= qra.x && t < qra.y;
        let sees_b = ok_b && t >= qrb.x && t < qrb.y;
        if (!(sees_a || sees_b)) {
          continue;
        }
        let rq = row0 + i;
        let qb4 = rq * D4;
        var xa = vec4f(0.0);
        var xb = vec4f(0.0);
        var pa = vec4f(0.0);
        var pb = vec4f(0.0);
        for (var d = 0u; d < D4; d++) {
          let qq = q[qb4 + d];
          let oo = dout[qb4 + d];
          qc[d] = qq;
          oc[d] = oo;
          xa += qq * ka[d];
          xb += qq * kb[d];
          pa += oo * va[d];
          pb += oo * vb[d];
        }
        let l2 = stats[2u * rq] * LOG2E;
        let delta = stats[2u * rq + 1u];
        let pra = select(0.0, exp2(hsum(xa) - l2), sees_a);
        let prb = select(0.0, exp2(hsum(xb) - l2), sees_b);
        let dsa = pra * (hsum(pa) - delta);
        let dsb = prb * (hsum(pb) - delta);
        for (var d = 0u; d < D4; d++) {
          let qq = qc[d];
          let oo = oc[d];
          gva[d] += pra * oo;
          gvb[d] += prb * oo;
          gka[d] += dsa * qq;
          gkb[d] += dsb * qq;
        }
      }
    }
  }
  let sc = p.scale_log2 * LN2;
  for (var d = 0u; d < D4; d++) {
    dq_dk[key_a * D4 + d] = select(vec4f(0.0), dq_dk[key_a * D4 + d], add) + gka[d] * sc;
    dv[key_a * D4 + d] = select(vec4f(0.0), dv[key_a * D4 + d], add) + gva[d];
  }
  if (has_b) {
    for (var d = 0u; d < D4; d++) {
      dq_dk[key_b * D4 + d] = select(vec4f(0.0), dq_dk[key_b * D4 + d], add) + gkb[d] * sc;
      dv[key_b * D4 + d] = select(vec4f(0.0), dv[key_b * D4 + d], add) + gvb[d];
    }
  }
}

// Merge space after the main loop: slot e of (WG/2)·D4 vec4s lives in ta, then tb.
fn merge_store(e: u32, x: vec4f) {
  let n = BC * KS;
  if (e < n) {
    ta[e] = x;
  } else {
    tb[e - n] = x;
  }
}

fn merge_load(e: u32) -> vec4f {
  let n = BC * KS;
  if (e < n) {
    return ta[e];
  }
  return tb[e - n];
}

@compute @workgroup_size(64)
fn dq_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let rows_per = WG / NS;
  let rl = lid / NS;
  let split = lid % NS; // this invocation takes keys split, split + NS, … of each tile
  let bh = wid.y;
  let h = bh % p.H;
  let b = bh / p.H;
  let kv0 = (b * p.HKV + h / (p.H / p.HKV)) * p.TK;
  let off = p.TK - p.TQ;
  let i0 = wid.x * rows_per;
  // the keys any row of this tile may see (uniform across the workgroup)
  let tile_lo = key_range(b, i0 + off).x;
  let tile_hi = key_range(b, min(i0 + rows_per, p.TQ) - 1u + off).y;

  let i = i0 + rl;
  let live = i < p.TQ;
  let row = bh * p.TQ + min(i, p.TQ - 1u);
  let range = key_range(b, i + off);
  let hole = key_hole(b, i + off);
  let l2 = stats[2u * row] * LOG2E;
  let delta = stats[2u * row + 1u];
  var qr: Row;
  var orow: Row;
  var g: Row;
  for (var d = 0u; d < D4; d++) {
    qr[d] = q[row * D4 + d] * p.scale_log2;
    orow[d] = dout[row * D4 + d];
    g[d] = vec4f(0.0);
  }
  for (var t0 = tile_lo; t0 < tile_hi; t0 += BC) {
    let n = min(BC, tile_hi - t0);
    let base = (kv0 + t0) * D4;
    for (var e = lid; e < n * D4; e += WG) {
      let at = (e / D4) * KS + e % D4;
      ta[at] = k[base + e];
      tb[at] = v[base + e];
    }
    for (var j = lid; j < n; j += WG) {
      tl[j] = select(0.0, 1.0, key_ok(b, t0 + j));
    }
    workgroupBarrier();
    if (live) {
      for (var j = split; j < n; j += NS) {
        let s = t0 + j;
        if (s >= range.x && s < range.y && !in_hole(hole, s) && tl[j] != 0.0) {
          var x = vec4f(0.0);
          var dp = vec4f(0.0);
          for (var d = 0u; d < D4; d++) {
            x += qr[d] * ta[j * KS + d];
            dp += orow[d] * tb[j * KS + d];
          }
          let ds = exp2(hsum(x) - l2) * (hsum(dp) - delta);
          for (var d = 0u; d < D4; d++) {
            g[d] += ds * ta[j * KS + d];
          }
        }
      }
    }
    workgroupBarrier();
  }
  // sum the NS partial dq of each row
  for (var step = NS / 2u; step > 0u; step /= 2u) {
    if (split >= step && split < 2u * step) {
      let slot = rl * step + split - step;
      for (var d = 0u; d < D4; d++) {
        merge_store(slot * D4 + d, g[d]);
      }
    }
    workgroupBarrier();
    if (split < step) {
      let slot = rl * step + split;
      for (var d = 0u; d < D4; d++) {
        g[d] += merge_load(slot * D4 + d);
      }
    }
    workgroupBarrier();
  }
  if (live && split == 0u) {
    let sc = p.scale_log2 * LN2;
    for (var d = 0u; d < D4; d++) {
      dq_dk[row * D4 + d] = g[d] * sc;
    }
  }
}

@compute @workgroup_size(64)
fn dkv_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let keys_per = WG / NS;
  let kl = lid / NS;
  let split = lid % NS; // this invocation takes query rows split, split + NS, … of each tile
  let bk = wid.y;
  let hk = bk % p.HKV;
  let b = bk / p.HKV;
  let group = p.H / p.HKV;
  let off = p.TK - p.TQ;
  let s0 = wid.x * keys_per;
  // the query rows any key of this tile may be seen by (uniform across the workgroup)
  let ilo = max(query_range(b, s0).x, off) - off;
  var qhi = query_range(b, min(s0 + keys_per, p.TK) - 1u).y;
  if (p.mask_kind == 4u) {
    // a chosen-rest key is seen by fewer queries than a prefix key before it: the bound is the tile's largest
    for (var j = s0; j < min(s0 + keys_per, p.TK); j++) {
      qhi = max(qhi, query_range(b, j).y);
    }
  }
  let ihi = max(qhi, off) - off;

  let s = s0 + kl;
  let in_range = s < p.TK;
  let sc_s = min(s, p.TK - 1u);
  let live = in_range && key_ok(b, sc_s);
  let key = bk * p.TK + sc_s;
  let qrange = query_range(b, sc_s);
  var kr: Row;
  var vr: Row;
  var gk: Row;
  var gv: Row;
  for (var d = 0u; d < D4; d++) {
    kr[d] = k[key * D4 + d] * p.scale_log2;
    vr[d] = v[key * D4 + d];
    gk[d] = vec4f(0.0);
    gv[d] = vec4f(0.0);
  }
  for (var g = 0u; g < group; g++) {
    let row0 = (b * p.H + hk * group + g) * p.TQ;
    for (var t0 = ilo; t0 < ihi; t0 += BC) {
      let n = min(BC, ihi - t0);
      let base = (row0 + t0) * D4;
      for (var e = lid; e < n * D4; e += WG) {
        let at = (e / D4) * KS + e % D4;
        ta[at] = q[base + e];
        tb[at] = dout[base + e];
      }
      for (var j = lid; j < n; j += WG) {
        tl[j] = stats[2u * (row0 + t0 + j)] * LOG2E;
        td[j] = stats[2u * (row0 + t0 + j) + 1u];
      }
      workgroupBarrier();
      if (live) {
        for (var j = split; j < n; j += NS) {
          let t = t0 + j + off;
          if (t >= qrange.x && t < qrange.y) {
            var x = vec4f(0.0);
            var dp = vec4f(0.0);
            for (var d = 0u; d < D4; d++) {
              x += ta[j * KS + d] * kr[d];
              dp += tb[j * KS + d] * vr[d];
            }
            let pj = exp2(hsum(x) - tl[j]);
            let ds = pj * (hsum(dp) - td[j]);
            for (var d = 0u; d < D4; d++) {
              gv[d] += pj * tb[j * KS + d];
              gk[d] += ds * ta[j * KS + d];
            }
          }
        }
      }
      workgroupBarrier();
    }
  }
  // sum the NS partial dk and dv of each key (dk, then dv, through the same merge space)
  for (var step = NS / 2u; step > 0u; step /= 2u) {
    let writer = split >= step && split < 2u * step;
    let reader = split < step;
    let wslot = kl * step + split - step;
    let rslot = kl * step + split;
    if (writer) {
      for (var d = 0u; d < D4; d++) {
        merge_store(wslot * D4 + d, gk[d]);
      }
    }
    workgroupBarrier();
    if (reader) {
      for (var d = 0u; d < D4; d++) {
        gk[d] += merge_load(rslot * D4 + d);
      }
    }
    workgroupBarrier();
    if (writer) {
      for (var d = 0u; d < D4; d++) {
        merge_store(wslot * D4 + d, gv[d]);
      }
    }
    workgroupBarrier();
    if (reader) {
      for (var d = 0u; d < D4; d++) {
        gv[d] += merge_load(rslot * D4 + d);
      }
    }
    workgroupBarrier();
  }
  if (in_range && split == 0u) {
    let sc = p.scale_log2 * LN2;
    for (var d = 0u; d < D4; d++) {
      dq_dk[key * D4 + d] = gk[d] * sc;
      dv[key * D4 + d] = gv[d];
    }
  }
}
