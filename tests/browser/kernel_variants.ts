/**
 * The pipelines the ops build from each kernel file: entry point and `override` constants, as the ops in
 * src/autograd/ops and src/optim pass them to `dispatch` (see each op's `constants`). A constant that takes a
 * few values is tried at every value (one at a time from a base, not every combination), except where building
 * each one costs seconds on SwiftShader and the values only pick branches of run-time code (dpo_loss) or tile
 * shapes (attention: see below). A size chosen from the device's limits (attention's keys per tile) is computed
 * the way the op computes it.
 *
 * Entry points not listed for a file get its defaults ({}). The browser test checks that every entry listed
 * here exists and that every entry point of every file is compiled. A file an op uses only on devices with more
 * than the guaranteed limits (the optimizer's multi-tensor kernels: 25 storage buffers) lists no pipeline ([])
 * on a device below them.
 */

/** One pipeline: an entry point with its override constants. */
export interface PipelineVariant {
  entry: string;
  constants: Record<string, number>;
}

/** The device limits the variants depend on. */
export interface VariantLimits {
  maxComputeWorkgroupStorageSize: number;
  maxStorageBuffersPerShaderStage: number;
}

type Consts = Record<string, number>;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** `base`, then `base` with each alternative merged in, one at a time (duplicates removed). */
function oneAtATime(base: Consts, alternatives: Consts[]): Consts[] {
  const out: Consts[] = [];
  const seen = new Set<string>();
  for (const c of [base, ...alternatives.map((a) => ({ ...base, ...a }))]) {
    const key = JSON.stringify(Object.entries(c).sort());
    if (!seen.has(key)) {
      seen.add(key);
      out.push(c);
    }
  }
  return out;
}

const each = (name: string, values: number[]): Consts[] => values.map((v) => ({ [name]: v }));

/** attention's plan: keys per tile (bc) and splits (ns) for a head dim, as src/autograd/ops/attention.ts chooses. */
function attentionTile(
  D: number,
  splits: number,
  limits: VariantLimits,
): { D4: number; BC: number; NS: number } {
  const D4 = Math.ceil(D / 4);
  let bc = 32;
  while (bc > 4 && 2 * bc * (D4 + 1) * 16 + 8 * bc + 256 > limits.maxComputeWorkgroupStorageSize) bc /= 2;
  const ns = 2 * bc * (D4 + 1) < 32 * D4 ? 1 : splits;
  return { D4, BC: bc, NS: ns };
}

/**
 * attention's pipelines. Each takes seconds to build on SwiftShader (the tiles unroll over the head dim), so not
 * every head dim and split is tried: the rows variant at SmolLM2's head dim (64) and the largest (128); the
 * tiled one at 64 with the op's default splits (4) and the most (64), and at 128 (where the tiles leave room
 * for one split only on small workgroup memory), with keys per tile chosen from the device's limits.
 */
function attention(limits: VariantLimits, rows: string, tiled: string): PipelineVariant[] {
  const out: PipelineVariant[] = [];
  const seen = new Set<string>();
  const add = (entry: string, constants: Consts) => {
    const key = `${entry}${JSON.stringify(constants)}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ entry, constants });
    }
  };
  for (const D of [64, 128]) add(rows, { D4: D / 4 });
  for (const [D, splits] of [[64, 4], [64, 64], [128, 4]]) add(tiled, attentionTile(D, splits, limits));
  return out;
}

/** Binary broadcast modes (src/autograd/ops/binary.ts Mode): the (MODE_A, MODE_B) pairs the planner makes. */
const MODE_PAIRS: Consts[] = [
  [0, 0],
  [4, 0],
  [0, 4],
  [0, 1],
  [0, 2],
  [0, 3],
  [1, 0],
  [2, 0],
  [3, 0],
].map(([a, b]) => ({ MODE_A: a, MODE_B: b }));

/** The variants of one kernel file on a device with `limits`; null: every entry point with its defaults. */
export function kernelVariants(file: string, limits: VariantLimits): PipelineVariant[] | null {
  const v = (entry: string, list: Consts[]) => list.map((constants) => ({ entry, constants }));
  const softmaxLike = (stem: string) => [
    ...v(`${stem}_thread`, each("LOG", [0, 1])),
    ...v(`${stem}_wg`, oneAtATime({ LOG: 0, WG: 64 }, [{ LOG: 1 }, { WG: 256 }, { LOG: 1, WG: 256 }])),
  ];
  const norm = () => [
    ...v("forward", each("WG", [32, 64, 128, 256])),
    ...v("backward_dx", each("WG", [32, 64, 128, 256])),
  ];
  switch (file) {
    case "adamw.wgsl":
      return v("main", [{ ITEMS: 1 }]);
    case "adamw_multi.wgsl":
    case "grad_norm_multi.wgsl":
      // src/optim/multi_tensor.ts: only where the device has 25 storage bindings per stage
      return limits.maxStorageBuffersPerShaderStage >= 25 ? v("main", [{}]) : [];
    case "attention_fwd.wgsl":
      return attention(limits, "fwd_rows", "fwd_tiled");
    case "attention_bwd.wgsl":
      return [...attention(limits, "dq_rows", "dq_tiled"), ...attention(limits, "dkv_rows", "dkv_tiled")];
    case "attention_delta.wgsl":
      return v("main", each("D", [6, 64, 128]));
    case "binary.wgsl": {
      const grads = each("GRAD", range(6));
      return [
        ...v(
          "main",
          oneAtATime({ OP: 0, MODE_A: 0, MODE_B: 0, GRAD: 0 }, [...each("OP", range(4)), ...MODE_PAIRS]),
        ),
        ...["grad", "reduce_rows", "reduce_cols"].flatMap((entry) =>
          v(entry, oneAtATime({ OP: 0, MODE_A: 0, MODE_B: 0, GRAD: 0 }, [...grads, ...MODE_PAIRS]))
        ),
      ];
    }
    case "dpo_loss.wgsl": {
      // every override only picks branches of run-time code (each dpo_loss pipeline takes seconds to build on
      // SwiftShader): the defaults, every loss type with every option on, and the two single types that take
      // paths of their own (ipo alone, kto_pair alone; src/dpo/loss_op.ts DPO_LOSS_TYPES order)
      const list = [
        { TYPES: 1, FDIV: 0, WEIGHTED: 0, LEN_I32: 0 },
        { TYPES: 0xffff, FDIV: 3, WEIGHTED: 1, LEN_I32: 3 },
        { TYPES: 1 << 3, FDIV: 1, WEIGHTED: 0, LEN_I32: 1 },
        { TYPES: 1 << 5, FDIV: 2, WEIGHTED: 1, LEN_I32: 2 },
      ];
      // sort runs with aot or aot_pair active (type ids 9 and 10)
      return [...v("forward", list), ...v("backward", list), ...v("sort", [{ ...list[1], TYPES: 3 << 9 }])];
    }
    case "layernorm.wgsl":
    case "rmsnorm.wgsl":
      return norm();
    case "logprob_stats.wgsl":
      return v("main", each("LANES", [1, 2, 4, 8, 16, 32, 64]));
    case "matmul_register.wgsl":
    case "matmul_subgroup.wgsl":
      return v("main", [0, 1, 2, 3].map((t) => ({ TRANS_A: t & 1, TRANS_B: t >> 1 })));
    case "matmul_shared.wgsl":
      return v("main", [0, 1, 2, 3].map((t) => ({ TRANS_A: t & 1, TRANS_B: t >> 1, TM: 4, TN: 4 })));
    case "matmul_tiled.wgsl":
      return v("main", [0, 1, 2, 3].map((t) => ({ TRANS_A: t & 1, TRANS_B: t >> 1, TM: 8, TN: 8 })));
    case "reduce.wgsl":
      return [...v("sum_wg", each("WG", [64, 256])), ...v("max_wg", each("WG", [64, 256]))];
    case "softmax.wgsl":
      return softmaxLike("forward");
    case "softmax_backward.wgsl":
      return softmaxLike("backward");
    case "unary.wgsl":
      return [...v("main", each("OP", range(13))), ...v("grad", each("OP", range(13)))];
    case "where.wgsl":
      return v("main", range(8).map((t) => ({ MASK_I32: t & 1, A_IMM: (t >> 1) & 1, B_IMM: t >> 2 })));
    default:
      return null;
  }
}
