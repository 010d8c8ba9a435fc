// attention_fwd.wgsl — scaled-dot-product attention forward, flash style: an online softmax over the visible
// keys, saving only the output and each row's logsumexp (never a [T, T] score matrix in global memory).
//
// Bindings: 0 uniform Params (common/attention_params.wgsl; the bindings are in common/attention_fwd_io.wgsl);
//           1 q    [B, H,   TQ, D] f32 as vec4 (read);
//           2 k    [B, HKV, TKS, D] f32 as vec4 (read): keys are the first TK ≤ TKS positions of each head
//             (TKS > TK: a KV cache with room to grow);
//           3 v    [B, HKV, TKS, D] f32 as vec4 (read), like k;
//           4 mask [B, TK] key-padding mask as raw 32-bit words (read): p.mask_kind 1 = i32 (≠ 0 is a real
//             token), 2 = f32 (≠ ±0 is a real token), 0 = no mask (any buffer is bound and never read);
//             p.mask_kind 3 = segments, [B, TK, 2] u32: position t belongs to the segment [start, end) of
//             positions (packed sequences: several sequences in one row, none seeing another); p.mask_kind 4
//             = segments with holes, [B, TK, 4] u32 (preference pairs sharing their prefix:
//             common/attention_range.wgsl);
//           5 o    [B, H, TQ, D] f32 as vec4 (read_write): softmax(q·kᵀ·scale over the visible keys) · v, zeros
//             for a row that sees no key;
//           6 lse  [B, H, TQ] f32 (read_write): natural-log logsumexp of each row's scaled scores over its
//             visible keys, -inf for a row that sees no key.
// Layout:   contiguous row-major, D = 4·D4 (the op zero-pads other head dims to a multiple of 4). Query head h
//           reads kv head h / (H / HKV) (grouped-query attention, no copies). Queries are aligned to the end of
//           the keys: query row i sits at absolute position t = i + TK − TQ. Key s is visible to query t when
//           mask[b, s] ≠ 0 and, if causal, s ≤ t and (window = 0 or t − s < window); with segments, when s lies
//           in t's segment (key_range) and not in t's hole (key_hole).
// Scores are kept in log2 units (q is pre-multiplied by scale·log2(e)) so every exponential is an exp2; the
// running max starts at a finite −1e30 and blocks without a visible key are skipped, so no inf − inf occurs.
//
// Entry points (same bindings):
//   fwd_rows  — one invocation per PAIR of adjacent query rows (each K/V load feeds both), accumulators in
//               registers, K/V read straight from memory: for CPU adapters, where an invocation is one SIMD
//               lane and loads dominate. Dispatch: grid1d(B·H·ceil(TQ/2), 64); pair r = gid.x + gid.y·nwg.x·64,
//               p.rows = B·H·ceil(TQ/2); once per window [p.win_lo, p.win_hi) of the keys, the later windows with
//               p.accumulate ≠ 0 continuing each row from its o and lse (lavapipe's loop limit: attention.ts).
//   fwd_tiled — one workgroup of 64 invocations per (query tile of 64/NS rows, b·H + h): NS invocations per
//               row, each taking every NS-th key with its own running max/sum, merged in workgroup memory at
//               the end; each tile of BC keys (K, V and the mask flags) is staged in workgroup memory once and
//               shared by the whole tile: for GPUs. Dispatch: [ceil(TQ / (64/NS)), B·H]; p.rows = B·H·TQ.
// Override constants: D4 (head dim / 4, 1..32); fwd_tiled only: BC (keys per tile), NS (1, 2, 4, 8, 16, 32 or
//                     64). Workgroup memory: 2·BC·(D4+1)·16 + 4·BC + 256 bytes, and 2·BC·(D4+1) ≥ 32·D4 when
//                     NS > 1 (the merge reuses the K/V tiles).
// requires: common/attention_fwd_io.wgsl, common/attention_range.wgsl, common/grid.wgsl

override BC: u32 = 32u;
override NS: u32 = 4u;

const KB = 8u; // keys scored together before one rescale of the accumulators
const WG = 64u; // fwd_tiled workgroup size

override KS: u32 = D4 + 1u; // row stride of the workgroup tiles (padded against bank conflicts)
var<workgroup> ks: array<vec4f, BC * KS>;
var<workgroup> vs: array<vec4f, BC * KS>;
var<workgroup> kok: array<u32, BC>;
var<workgroup> ml: array<vec2f, 32>; // (m, l) of the partial states being merged (WG / 2)

@compute @workgroup_size(64)
fn fwd_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
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
  let kv0 = (b * p.HKV + h / (p.H / p.HKV)) * p.TKS; // row index of key 0 of this kv head
  let off = p.TK - p.TQ;
  let ra = key_range(b, ia + off);
  let ha = key_hole(b, ia + off);
  var rb = vec2u(0u, 0u);
  var hb = vec2u(0u, 0u);
  if (has_b) {
    rb = key_range(b, ia + 1u + off);
    hb = key_hole(b, ia + 1u + off);
  }
  // this dispatch's window of the keys
  let lo = max(ra.x, p.win_lo);
  let hi = min(max(ra.y, rb.y), p.win_hi);
  let row_a = bh * p.TQ + ia;
  if (p.accumulate != 0u && hi <= lo) {
    return; // no key of this window is visible: the rows stay as earlier windows left them
  }

  var qa: Row;
  var qb: Row;
  var acc_a: Row;
  var acc_b: Row;
  load_query(row_a, &qa);
  if (has_b) {
    load_query(row_a + 1u, &qb); // else qb stays 0 (a missing row b scores nothing)
  }
  var ma = NEG;
  var mb = NEG;
  var la = 0.0;
  var lb = 0.0;
  if (p.accumulate != 0u) {
    resume(row_a, &acc_a, &ma, &la);
    if (has_b) {
      resume(row_a + 1u, &acc_b, &mb, &lb);
    }
  }
  var sa: array<f32, KB>;
  var sb: array<f32, KB>;
  var oka: array<bool, KB>;
  var okb: array<bool, KB>;
  for (var s0 = lo; s0 < hi; s0 += KB) {
    var bma = NEG;
    var bmb = NEG;
    var seen = false;
    for (var j = 0u; j < KB; j++) {
      let s = s0 + j;
      let kv = s < hi && key_ok(b, s);
      let va = kv && s >= ra.x && s < ra.y && !in_hole(ha, s);
      let vb = kv && s >= rb.x && s < rb.y && !in_hole(hb, s);
      oka[j] = va;
      okb[j] = vb;
      if (va || vb) {
        let kb = (kv0 + s) * D4;
        var da = vec4f(0.0);
        var db = vec4f(0.0);
        for (var d = 0u; d < D4; d++) {
          let kk = k[kb + d];
          da += qa[d] * kk;
          db += qb[d] * kk;
        }
        sa[j] = hsum(da);
        sb[j] = hsum(db);
        if (va) {
          bma = max(bma, sa[j]);
        }
        if (vb) {
          bmb = max(bmb, sb[j]);
        }
        seen = true;
      }
    }
    if (!seen) {
      continue;
    }
    let mna = max(ma, bma);
    let mnb = max(mb, bmb);
    let ca = exp2(ma - mna);
    let cb = exp2(mb - mnb);
    la *= ca;
    lb *= cb;
    for (var d = 0u; d < D4; d++) {
      acc_a[d] *= ca;
      acc_b[d] *= cb;
    }
    for (var j = 0u; j < KB; j++) {
      if (oka[j] || okb[j]) {
        let pa = select(0.0, exp2(sa[j] - mna), oka[j]);
        let pb = select(0.0, exp2(sb[j] - mnb), okb[j]);
        la += pa;
        lb += pb;
        let vb = (kv0 + s0 + j) * D4;
        for (var d = 0u; d < D4; d++) {
          let vv = v[vb + d];
          acc_a[d] += pa * vv;
          acc_b[d] += pb * vv;
        }
      }
    }
    ma = mna;
    mb = mnb;
  }
  write_row(row_a, &acc_a, ma, la);
  if (has_b) {
    write_row(row_a + 1u, &acc_b, mb, lb);
  }
}

// Merge space after the key loop: slot e of (WG/2)·D4 vec4s lives in ks, then vs.
fn merge_store(e: u32, x: vec4f) {
  let n = BC * KS;
  if (e < n) {
    ks[e] = x;
  } else {
    vs[e - n] = x;
  }
}

fn merge_load(e: u32) -> vec4f {
  let n = BC * KS;
  if (e < n) {
    return ks[e];
  }
  return vs[e - n];
}

@compute @workgroup_size(64)
fn fwd_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let rows_per = WG / NS;
  let rl = lid / NS; // this invocation's row in the tile
  let split = lid % NS; // which of the NS invocations of the row: it takes keys split, split + NS, …
  let bh = wid.y;
  let h = bh % p.H;
  let b = bh / p.H;
  let kv0 = (b * p.HKV + h / (p.H / p.HKV)) * p.TKS;
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

  var qr: Row;
  var acc: Row;
  for (var d = 0u; d < D4; d++) {
    qr[d] = q[row * D4 + d] * p.scale_log2;
    acc[d] = vec4f(0.0);
  }
  var m = NEG;
  var l = 0.0;
  var sc: array<f32, KB>;
  var ok: array<bool, KB>;
  for (var t0 = tile_lo; t0 < tile_hi; t0 += BC) {
    let n = min(BC, tile_hi - t0);
    let base = (kv0 + t0) * D4;
    for (var e = lid; e < n * D4; e += WG) {
      let at = (e / D4) * KS + e % D4;
      ks[at] = k[base + e];
      vs[at] = v[base + e];
    }
    for (var j = lid; j < n; j += WG) {
      kok[j] = select(0u, 1u, key_ok(b, t0 + j));
    }
    workgroupBarrier();
    if (live) {
      for (var j0 = split; j0 < n; j0 += NS * KB) {
        var bm = NEG;
        var seen = false;
        for (var j = 0u; j < KB; j++) {
          let jj = j0 + j * NS;
          let s = t0 + jj;
          let vis = jj < n && s >= range.x && s < range.y && !in_hole(hole, s) && kok[min(jj, BC - 1u)] != 0u;
          ok[j] = vis;
          if (vis) {
            var dv = vec4f(0.0);
            for (var d = 0u; d < D4; d++) {
              dv += qr[d] * ks[jj * KS + d];
            }
            sc[j] = hsum(dv);
            bm = max(bm, sc[j]);
            seen = true;
          }
        }
        if (seen) {
          let mn = max(m, bm);
          let c = exp2(m - mn);
          l *= c;
          for (var d = 0u; d < D4; d++) {
            acc[d] *= c;
          }
          for (var j = 0u; j < KB; j++) {
            if (ok[j]) {
              let pj = exp2(sc[j] - mn);
              l += pj;
              let vb = (j0 + j * NS) * KS;
              for (var d = 0u; d < D4; d++) {
                acc[d] += pj * vs[vb + d];
              }
            }
          }
          m = mn;
        }
      }
    }
    workgroupBarrier();
  }
  // merge the NS partial softmax states of each row, halving the number of live partials each round
  for (var step = NS / 2u; step > 0u; step /= 2u) {
    if (split >= step && split < 2u * step) {
      let slot = rl * step + split - step;
      ml[slot] = vec2f(m, l);
      for (var d = 0u; d < D4; d++) {
        merge_store(slot * D4 + d, acc[d]);
      }
    }
    workgroupBarrier();
    if (split < step) {
      let slot = rl * step + split;
      let other = ml[slot];
      let mn = max(m, other.x);
      let ca = exp2(m - mn);
      let cb = exp2(other.x - mn);
      l = l * ca + other.y * cb;
      for (var d = 0u; d < D4; d++) {
        acc[d] = acc[d] * ca + merge_load(slot * D4 + d) * cb;
      }
      m = mn;
    }
    workgroupBarrier();
  }
  if (live && split == 0u) {
    write_row(row, &acc, m, l);
  }
}
