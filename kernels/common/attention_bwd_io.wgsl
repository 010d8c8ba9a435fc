// common/attention_bwd_io.wgsl — what attention's backward kernels share (`// requires:
// common/attention_bwd_io.wgsl`): attention_bwd.wgsl (dq_rows, dkv_rows, the tiled entries) and
// attention_dq_subgroup.wgsl. The bindings (see attention_bwd.wgsl's header), and a query row's part of the dQ
// pass: its saved statistics, its scaled query and output-gradient rows, and the write of its dq.
// requires: common/attention_params.wgsl

const DMAX4 = 32u; // head dims up to 128
const LOG2E = 1.4426950408889634;
const LN2 = 0.6931471805599453;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read> dout: array<vec4f>;
@group(0) @binding(7) var<storage, read_write> dq_dk: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> dv: array<vec4f>;

alias Row = array<vec4f, DMAX4>;

// A query row's (L·log2(e), Δ) from stats.
fn row_stats(row: u32) -> vec2f {
  return vec2f(stats[2u * row] * LOG2E, stats[2u * row + 1u]);
}

// A query row pre-multiplied by scale·log2(e) into `qr`, and its output gradient into `gr`.
fn load_q_dout(row: u32, qr: ptr<function, Row>, gr: ptr<function, Row>) {
  for (var d = 0u; d < D4; d++) {
    (*qr)[d] = q[row * D4 + d] * p.scale_log2;
    (*gr)[d] = dout[row * D4 + d];
  }
}

// dq of a row: g·scale, added to what an earlier window of keys wrote when p.accumulate ≠ 0.
fn write_dq(row: u32, g: ptr<function, Row>) {
  let sc = p.scale_log2 * LN2;
  let add = p.accumulate != 0u;
  for (var d = 0u; d < D4; d++) {
    dq_dk[row * D4 + d] = select(vec4f(0.0), dq_dk[row * D4 + d], add) + (*g)[d] * sc;
  }
}
