/** Every op (forward + backward), re-exported. */
export { add, div, mul, sub } from "./binary.ts";
export {
  exp,
  gelu,
  log,
  logsigmoid,
  neg,
  relu,
  rsqrt,
  sigmoid,
  silu,
  softplus,
  sqrt,
  square,
  tanh,
  unary,
  UNARY_OPS,
  type UnaryOp,
} from "./unary.ts";
export { swiglu } from "./swiglu.ts";
export { maskedFill, where } from "./where.ts";
export { max, maxWithIndices, mean, type ReduceOptions, sum } from "./reduce.ts";
export { logSoftmax, softmax } from "./softmax.ts";
export { transpose } from "./transpose.ts";
export { concat } from "./concat.ts";
export { slice } from "./slice.ts";
export { gatherRows, type GatherRowsOptions } from "./gather_rows.ts";
export { permute } from "./permute.ts";
export { reshape } from "./reshape.ts";
export { scale } from "./scale.ts";
export { layerNorm } from "./layernorm.ts";
export { rmsNorm } from "./rmsnorm.ts";
export { type Llama3RopeScaling, rope, type RopeConfig, type RopeOptions } from "./rope.ts";
export {
  attention,
  ATTENTION_MAX_HEAD_DIM,
  type AttentionOptions,
  type AttentionVariant,
  setAttentionSubgroup,
  setAttentionUnroll,
} from "./attention.ts";
export { type HostLabels, IGNORE_INDEX, type Labels, shiftLabels } from "./labels.ts";
export {
  fusedLogProbs,
  type FusedLogProbsOptions,
  type FusedLogProbsResult,
  fusedLogProbsWithStats,
} from "./fused_logprobs.ts";
export { lmHeadLogits } from "./lm_head_logits.ts";
export { logSoftmaxGather } from "./log_softmax_gather.ts";
export { weightedRowSum } from "./weighted_row_sum.ts";
export { type SequenceLogps, sequenceLogps, type SequenceLogpsOptions } from "./sequence_logps.ts";
export { crossEntropy } from "./cross_entropy.ts";
export {
  matmul,
  matmulInto,
  type MatmulIntoOptions,
  type MatmulOptions,
  type MatmulVariant,
  matmulVariant,
  setMatmulVariant,
} from "./matmul.ts";
export { setTextureOperands, textureOperandsOn } from "./texture_operands.ts";
