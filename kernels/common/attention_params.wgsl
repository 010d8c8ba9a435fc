// common/attention_params.wgsl — the dispatch parameters and head dim of attention's kernels (`// requires:
// common/attention_params.wgsl`): attention_fwd.wgsl, attention_fwd_subgroup.wgsl (through
// common/attention_fwd_io.wgsl) and attention_bwd.wgsl, which attention.ts fills from one plan.

struct Params {
  B: u32,
  H: u32,
  HKV: u32,
  TQ: u32,
  TK: u32,
  causal: u32,
  window: u32, // 0 = no sliding window
  rows: u32, // invocations that do work (see each kernel's entry points)
  mask_kind: u32, // 0 = no mask, 1 = i32 words, 2 = f32 words, 3 = segments, 4 = segments with holes
  scale_log2: f32, // softmax scale · log2(e)
  TKS: u32, // the forward's positions per (b, kv head) in k's and v's memory (unused by the backward)
  // only keys (forward, dq_rows) or absolute query positions (dkv_rows) in [win_lo, win_hi) are visited by a
  // dispatch (a window), and accumulate ≠ 0 continues what an earlier window wrote
  win_lo: u32,
  win_hi: u32,
  accumulate: u32,
}

override D4: u32 = 16u; // head dim / 4
