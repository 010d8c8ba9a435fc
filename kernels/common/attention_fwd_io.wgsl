// common/attention_fwd_io.wgsl — what attention's forward kernels share (`// requires:
// common/attention_fwd_io.wgsl`): attention_fwd.wgsl (fwd_rows, fwd_tiled) and attention_fwd_subgroup.wgsl. The
// bindings (see attention_fwd.wgsl's header), and the reading and writing of one row's online-softmax state (o
// and its logsumexp).
// requires: common/neg_inf.wgsl, common/attention_params.wgsl

const DMAX4 = 32u; // head dims up to 128
const NEG = -1.0e30; // a finite "minus infinity" for the running max: exp2(NEG − m) = 0 for any real score m
const LN2 = 0.6931471805599453;
const LOG2E = 1.4426950408889634;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> o: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

alias Row = array<vec4f, DMAX4>;

// Row `row` of q, pre-multiplied by scale·log2(e), into `qr` (a query's start: its accumulators start at 0, as
// function variables do).
fn load_query(row: u32, qr: ptr<function, Row>) {
  for (var d = 0u; d < D4; d++) {
    (*qr)[d] = q[row * D4 + d] * p.scale_log2;
  }
}

// Picks up a row that an earlier window of keys left (p.accumulate): with o = acc / l and L = its logsumexp,
// the online state m = L·log2(e), l = 1, acc = o continues it exactly; a row that saw no key yet (L = -inf)
// starts afresh.
fn resume(row: u32, acc: ptr<function, Row>, m: ptr<function, f32>, l: ptr<function, f32>) {
  let L = lse[row];
  if (L >= NEG) {
    *m = L * LOG2E;
    *l = 1.0;
    for (var d = 0u; d < D4; d++) {
      (*acc)[d] = o[row * D4 + d];
    }
  }
}

// Writes one finished row: acc / l and the logsumexp, or zeros and -inf when the row saw no key.
fn write_row(row: u32, acc: ptr<function, Row>, m: f32, l: f32) {
  if (l == 0.0) {
    for (var d = 0u; d < D4; d++) {
      o[row * D4 + d] = vec4f(0.0);
    }
    lse[row] = neg_inf();
  } else {
    let inv = 1.0 / l;
    for (var d = 0u; d < D4; d++) {
      o[row * D4 + d] = (*acc)[d] * inv;
    }
    lse[row] = (m + log2(l)) * LN2;
  }
}
