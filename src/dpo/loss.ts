/**
 * `dpoLoss`: the DPO-family losses of SPEC.md on per-sequence log-probs, on the GPU, with gradients to the policy
 * log-probs (and to the nll scalar of sft / RPO). Configuration is a partial camelCase DPOConfig; invalid values
 * throw an error saying what is allowed, and the warnings SPEC.md asks for are printed once per process.
 */
import { sink } from "../io/platform.ts";
import {
  DPO_LOSS_STATS,
  DPO_LOSS_TYPES,
  dpoLossOp,
  type DpoLossSpec,
  type DpoLossType,
  F_DIVERGENCE_TYPES,
  type FDivergenceType,
} from "./loss_op.ts";
import { copyBuffer, upload } from "../gpu/queue.ts";
import { ConfigError } from "./config_error.ts";
import { tensor } from "../tensor/create.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";
import { editDistance } from "../util/nearest.ts";

export { DPO_LOSS_TYPES, type DpoLossType, F_DIVERGENCE_TYPES, type FDivergenceType };

/** Names of the `metrics` tensor's elements, in order (TRL's metric names, then bco_pair's running mean). */
export const DPO_LOSS_METRICS = DPO_LOSS_STATS;

/** The loss-level options of DPOConfig (camelCase); other DPOConfig fields are accepted and ignored. */
export interface DpoLossConfig {
  /** β (0.1). */
  beta?: number;
  /** A type or a list of types ("sigmoid"); `aot_unpaired` is an alias of `aot_pair`. */
  lossType?: string | readonly string[];
  /** One weight per loss type (default 1 each). */
  lossWeights?: readonly number[] | null;
  /** ε (0): sigmoid (cDPO), robust, exo_pair, aot, aot_pair. */
  labelSmoothing?: number;
  /** No reference model: every reference log-prob is 0. */
  referenceFree?: boolean;
  fDivergenceType?: string;
  /** a of alpha_divergence (0.5). */
  fAlphaDivergenceCoef?: number;
  /** τ of discopop (0.05). */
  discopopTau?: number;
  /** RPO: loss += rpoAlpha · nll (null: off). */
  rpoAlpha?: number | null;
  /** WPO: multiply each pair's losses by its weight (given as `weights`). */
  useWeighting?: boolean;
}

export interface DpoLossInputs {
  /** [B] summed log-probs of the chosen completions under the policy (gradients flow here). */
  policyChosenLogps: Tensor;
  policyRejectedLogps: Tensor;
  /** [B] the reference's; leave out with `referenceFree`. */
  referenceChosenLogps?: Tensor;
  referenceRejectedLogps?: Tensor;
  /** [B] completion token counts (f32 or i32), needed by ipo and sigmoid_norm. */
  chosenLengths?: Tensor;
  rejectedLengths?: Tensor;
  /** [B] WPO pair weights w_c·w_r (with `useWeighting`; computed without gradient by the caller). */
  weights?: Tensor;
  /** One value: token-mean cross-entropy over the chosen completion tokens (with `rpoAlpha` or type sft). */
  nll?: Tensor;
}

export interface DpoLossOptions {
  /** bco_pair's running mean; a fresh one (0) for this call when not given. */
  bcoState?: BcoRunningMean;
  /** A training micro-batch (true): bco_pair updates its running mean before using it; evaluation does not. */
  training?: boolean;
}

export interface DpoLossOutput {
  /**
   * Per-example losses Σₖ wₖ·lossₖ (WPO-weighted): [B], or [2B] when kto_pair is the only type (chosen parts, then
   * rejected parts); in a list, kto_pair's two parts of a pair are averaged. mean(losses) + rpoAlpha·nll = loss.
   */
  losses: Tensor;
  /** The scalar to backpropagate: Σₖ wₖ·mean(lossₖ) + rpoAlpha·nll. */
  loss: Tensor;
  /** β·c and β·r (per token when ipo is the only type), detached. */
  chosenRewards: Tensor;
  rejectedRewards: Tensor;
  /** [8] batch metrics, named by DPO_LOSS_METRICS (rewards/*, logps/*, bco batch mean and running mean). */
  metrics: Tensor;
  /** Each type's per-entry losses (WPO-weighted, before loss weights), keyed by the names given; detached. */
  lossesByType: Record<string, Tensor>;
}

/** bco_pair's running mean δ and its update count, held on the GPU; read and load it for checkpoints. */
export class BcoRunningMean {
  /** [2] f32: δ, number of training updates. */
  readonly tensor: Tensor;
  constructor(init: { mean: number; count: number } = { mean: 0, count: 0 }) {
    checkState(init);
    this.tensor = tensor([init.mean, init.count], [2]).keep();
  }
  /** The current value (reads the GPU). */
  async read(): Promise<{ mean: number; count: number }> {
    const [mean, count] = await this.tensor.toArray();
    return { mean, count };
  }
  /** Replaces the state (a checkpoint's). */
  load(s: { mean: number; count: number }): void {
    checkState(s);
    upload(this.tensor.storage.buffer, new Float32Array([s.mean, s.count]));
  }
  dispose(): void {
    this.tensor.dispose();
  }
}

function checkState(s: { mean: number; count: number }): void {
  if (!Number.isFinite(s.mean) || !Number.isInteger(s.count) || s.count < 0 || s.count > 2 ** 24) {
    throw new RangeError(
      `bco_pair running mean: expected a finite mean and an integer count in [0, 2^24], got ${
        JSON.stringify(s)
      }`,
    );
  }
}

/** Types that read label_smoothing. */
const USES_LABEL_SMOOTHING = new Set<DpoLossType>(["sigmoid", "robust", "exo_pair", "aot", "aot_pair"]);
const ALIASES: Record<string, DpoLossType> = { aot_unpaired: "aot_pair" };

const warned = new Set<string>();
function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  sink().warn(`webdpo: ${message}`);
}

/** Forgets which warnings were printed (a new run, or tests). */
export function resetDpoLossWarnings(): void {
  warned.clear();
}

function closest(name: string, options: readonly string[]): string {
  return options.reduce((best, o) => (editDistance(name, o) < editDistance(name, best) ? o : best));
}

function finite(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ConfigError(`${name} must be a finite number, got ${v}`);
  }
  return v;
}

export interface ResolvedDpoLossConfig extends Omit<DpoLossSpec, "training"> {
  /** The type names as given (aliases kept), parallel to `types`. */
  names: readonly string[];
  referenceFree: boolean;
}

/**
 * Validates the loss options of a (partial) DPOConfig and fills in the defaults; throws on an invalid value or
 * combination, and prints SPEC.md's warnings (once). DPOConfig's constructor can call it to validate early.
 */
export function resolveDpoLossConfig(config: DpoLossConfig = {}): ResolvedDpoLossConfig {
  const beta = finite("beta", config.beta ?? 0.1);
  if (beta <= 0) throw new ConfigError(`beta must be > 0, got ${beta}`);

  const raw = config.lossType ?? "sigmoid";
  const names: string[] = typeof raw === "string" ? [raw] : [...raw];
  if (names.length === 0) throw new ConfigError("lossType is an empty list; give at least one loss type");
  const allowed = [...DPO_LOSS_TYPES, ...Object.keys(ALIASES)];
  const types = names.map((n) => {
    if (typeof n !== "string" || !allowed.includes(n)) {
      throw new ConfigError(
        `unknown loss type '${n}'` +
          (typeof n === "string" ? ` (did you mean '${closest(n, allowed)}'?)` : "") +
          `; allowed: ${allowed.join(", ")}`,
      );
    }
    return ALIASES[n] ?? (n as DpoLossType);
  });
  const dup = types.find((t, i) => types.indexOf(t) !== i);
  if (dup) throw new ConfigError(`lossType lists '${dup}' more than once; give each loss type once`);

  let weights: number[];
  if (config.lossWeights === undefined || config.lossWeights === null) weights = types.map(() => 1);
  else {
    if (config.lossWeights.length !== types.length) {
      throw new ConfigError(
        `lossWeights (loss_weights) has ${config.lossWeights.length} values but lossType has ${types.length} ` +
          `types (${names.join(", ")}); give one weight per loss type`,
      );
    }
    weights = config.lossWeights.map((w, k) => finite(`lossWeights[${k}]`, w));
  }

  const eps = finite("labelSmoothing", config.labelSmoothing ?? 0);
  if (types.includes("robust") && !(eps >= 0 && eps < 0.5)) {
    throw new ConfigError(`loss_type 'robust' needs 0 <= labelSmoothing (label_smoothing) < 0.5, got ${eps}`);
  }
  if (!(eps >= 0 && eps < 0.5)) {
    throw new ConfigError(`labelSmoothing (label_smoothing) must be in [0, 0.5), got ${eps}`);
  }
  if (types.includes("exo_pair") && eps === 0) {
    throw new ConfigError(
      "loss_type 'exo_pair' needs labelSmoothing (label_smoothing) > 0 (for example 1e-3); its loss has log(ε)",
    );
  }

  const fDiv = config.fDivergenceType ?? "reverse_kl";
  if (!(F_DIVERGENCE_TYPES as readonly string[]).includes(fDiv)) {
    throw new ConfigError(
      `unknown fDivergenceType '${fDiv}' (did you mean '${closest(fDiv, F_DIVERGENCE_TYPES)}'?); ` +
        `allowed: ${F_DIVERGENCE_TYPES.join(", ")}`,
    );
  }
  const alpha = finite("fAlphaDivergenceCoef", config.fAlphaDivergenceCoef ?? 0.5);
  const tau = finite("discopopTau", config.discopopTau ?? 0.05);
  if (tau <= 0) throw new ConfigError(`discopopTau must be > 0, got ${tau}`);
  const rpo = config.rpoAlpha === null || config.rpoAlpha === undefined
    ? 0
    : finite("rpoAlpha", config.rpoAlpha);
  const useWeighting = config.useWeighting ?? false;
  if (useWeighting && (types.includes("aot") || types.includes("aot_pair"))) {
    throw new ConfigError(
      "useWeighting (use_weighting) does not work with loss_type 'aot' / 'aot_pair' (their losses belong to sorted " +
        "positions, not to pairs); turn one of them off",
    );
  }

  if (types.includes("kto_pair")) {
    warnOnce("kto_pair: the unpaired KTO formulation (a KTO trainer) is preferable to loss_type 'kto_pair'");
  }
  if (eps > 0) {
    for (let k = 0; k < types.length; k++) {
      if (!USES_LABEL_SMOOTHING.has(types[k])) {
        warnOnce(`label_smoothing is not used by loss_type '${names[k]}'`);
      }
    }
  }
  return {
    types,
    names,
    weights,
    beta,
    labelSmoothing: eps,
    fDivergenceType: fDiv as FDivergenceType,
    fAlphaDivergenceCoef: alpha,
    discopopTau: tau,
    rpoAlpha: rpo,
    useWeighting,
    referenceFree: config.referenceFree ?? false,
  };
}

/**
 * The DPO loss of SPEC.md on [B] per-sequence log-probs. Gradients flow to the policy log-probs (and to `nll`);
 * everything stays on the GPU.
 */
export function dpoLoss(
  inputs: DpoLossInputs,
  config: DpoLossConfig = {},
  options: DpoLossOptions = {},
): DpoLossOutput {
  const c = resolveDpoLossConfig(config);
  const hasRef = inputs.referenceChosenLogps !== undefined || inputs.referenceRejectedLogps !== undefined;
  if (c.referenceFree && hasRef) {
    throw new Error(
      "referenceFree is set, so the reference log-probs are 0: do not pass referenceChosenLogps / " +
        "referenceRejectedLogps (or unset referenceFree)",
    );
  }
  if (!c.referenceFree && (!inputs.referenceChosenLogps || !inputs.referenceRejectedLogps)) {
    throw new Error(
      "referenceChosenLogps and referenceRejectedLogps are required unless referenceFree is set",
    );
  }
  const needLengths = c.types.filter((t) => t === "ipo" || t === "sigmoid_norm");
  if (needLengths.length > 0 && (!inputs.chosenLengths || !inputs.rejectedLengths)) {
    throw new Error(
      `loss_type '${needLengths[0]}' needs chosenLengths and rejectedLengths (completion token counts)`,
    );
  }
  if (c.useWeighting && !inputs.weights) {
    throw new Error("useWeighting is set: pass the WPO pair weights as `weights`");
  }
  if (!c.useWeighting && inputs.weights) {
    throw new Error("`weights` were given but useWeighting is off; set useWeighting to apply them");
  }
  const needsNll = c.rpoAlpha !== 0 || c.types.includes("sft");
  if (needsNll && !inputs.nll) {
    throw new Error(
      `${
        c.types.includes("sft") ? "loss_type 'sft'" : "rpoAlpha"
      } needs \`nll\` (the token-mean cross-entropy ` +
        "of the chosen completions)",
    );
  }
  if (!needsNll && inputs.nll) {
    throw new Error("`nll` was given but neither rpoAlpha nor loss_type 'sft' uses it");
  }

  const r = dpoLossOp({
    policyChosen: inputs.policyChosenLogps,
    policyRejected: inputs.policyRejectedLogps,
    referenceChosen: inputs.referenceChosenLogps,
    referenceRejected: inputs.referenceRejectedLogps,
    chosenLengths: inputs.chosenLengths,
    rejectedLengths: inputs.rejectedLengths,
    weights: inputs.weights,
    nll: inputs.nll,
    bcoState: options.bcoState?.tensor,
  }, { ...c, training: options.training ?? true });

  const lossesByType: Record<string, Tensor> = {};
  c.types.forEach((t, k) => {
    const s = r.byTypeSlices.get(t)!;
    const out = empty([s.length]);
    copyBuffer(r.byType.storage.buffer, s.offset * 4, out.storage.buffer, 0, s.length * 4);
    lossesByType[c.names[k]] = out;
  });
  r.byType.dispose();
  return {
    losses: r.losses,
    loss: r.loss,
    chosenRewards: r.chosenRewards,
    rejectedRewards: r.rejectedRewards,
    metrics: r.stats,
    lossesByType,
  };
}
