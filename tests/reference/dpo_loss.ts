/**
 * Plain float64 reference of the DPO-family losses of SPEC.md (../shared/dpo/SPEC.md): per-sequence log-probs →
 * per-example losses, loss, rewards, metrics, written straight from the formulas over dual numbers, so the same
 * code also gives exact gradients in forward mode (one input at a time) without sharing any derivative rule with
 * the kernel's analytic backward.
 */

export interface RefConfig {
  beta: number;
  /** Canonical names (aot_unpaired already mapped to aot_pair). */
  lossTypes: string[];
  lossWeights?: readonly number[];
  labelSmoothing?: number;
  fDivergenceType?: "reverse_kl" | "forward_kl" | "js_divergence" | "alpha_divergence";
  fAlphaDivergenceCoef?: number;
  discopopTau?: number;
  rpoAlpha?: number | null;
  useWeighting?: boolean;
}

export interface RefInputs {
  pc: number[];
  pr: number[];
  /** Absent: reference-free (all 0). */
  rc?: number[];
  rr?: number[];
  lc?: number[];
  lr?: number[];
  /** WPO pair weights. */
  w?: number[];
  nll?: number;
}

export interface RefState {
  /** bco_pair running mean (float32 values) and number of training updates so far. */
  mean: number;
  count: number;
}

export interface RefOutputs {
  byType: Record<string, number[]>;
  /** Σₖ wₖ·lossₖ per entry (kto_pair's halves averaged per pair when it is in a list). */
  losses: number[];
  loss: number;
  chosenRewards: number[];
  rejectedRewards: number[];
  metrics: {
    "rewards/chosen": number;
    "rewards/rejected": number;
    "rewards/accuracies": number;
    "rewards/margins": number;
    "logps/chosen": number;
    "logps/rejected": number;
  };
  bcoBatchMean: number;
  /** The (float32) running mean this call used; NaN without bco_pair. */
  bcoDelta: number;
  /** The state after the call. */
  state: RefState;
}

/** A dual number v + d·ε: the reference differentiates itself exactly, in forward mode, one input at a time. */
class D {
  constructor(readonly v: number, readonly d = 0) {}
}
const K = (v: number) => new D(v);
/** a.d·b with 0·∞ = 0 (a zero tangent stays zero even where a value overflows). */
const t = (d: number, v: number) => (d === 0 ? 0 : d * v);
const add = (a: D, b: D) => new D(a.v + b.v, a.d + b.d);
const sub = (a: D, b: D) => new D(a.v - b.v, a.d - b.d);
const mul = (a: D, b: D) => new D(a.v * b.v, t(a.d, b.v) + t(b.d, a.v));
const div = (a: D, b: D) => new D(a.v / b.v, t(a.d, 1 / b.v) - t(b.d, a.v / (b.v * b.v)));
const scl = (a: D, k: number) => new D(a.v * k, t(a.d, k));
const neg = (a: D) => new D(-a.v, -a.d);
const sq = (a: D) => mul(a, a);
const sigN = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const logsigN = (x: number) => Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
const exp = (a: D) => {
  const e = Math.exp(a.v);
  return new D(e, t(a.d, e));
};
const sig = (a: D) => new D(sigN(a.v), t(a.d, sigN(a.v) * sigN(-a.v)));
const logsig = (a: D) => new D(logsigN(a.v), t(a.d, sigN(-a.v)));
/** relu; torch's gradient at 0 is 0. */
const relu = (a: D) => (a.v > 0 ? a : K(0));
/** clamp(max = m), clamp(min = m): torch passes the gradient where the value equals the bound. */
const clampMax = (a: D, m: number) => (a.v <= m ? a : K(m));
const clampMin = (a: D, m: number) => (a.v >= m ? a : K(m));
const sum = (a: D[]) => a.reduce(add, K(0));
const meanD = (a: D[]) => scl(sum(a), 1 / a.length);
const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

function score(cfg: RefConfig): (x: D) => D {
  const a = cfg.fAlphaDivergenceCoef ?? 0.5;
  switch (cfg.fDivergenceType ?? "reverse_kl") {
    case "forward_kl":
      // alpha_divergence at a = 0, with the same clamp of the exponent at 80
      return (x) => neg(exp(clampMax(neg(x), 80)));
    case "js_divergence":
      return logsig;
    case "alpha_divergence":
      if (Math.abs(a - 1) < 1e-6) return (x) => x;
      return (x) => scl(exp(clampMax(scl(x, a - 1), 80)), 1 / (a - 1));
    default:
      return (x) => x;
  }
}

/** Entry count of one loss type for B pairs. */
export function refEntries(type: string, B: number): number {
  return type === "kto_pair" ? 2 * B : B;
}

interface DualInputs {
  pc: D[];
  pr: D[];
  nll: D;
}

interface Core {
  byType: Record<string, D[]>;
  losses: D[];
  loss: D;
  bcoBatchMean: number;
  bcoDelta: number;
  state: RefState;
}

function core(
  inp: RefInputs,
  x: DualInputs,
  cfg: RefConfig,
  opts: { state?: RefState; training?: boolean; fixedDelta?: number },
): Core {
  const B = inp.pc.length;
  const beta = cfg.beta;
  const eps = cfg.labelSmoothing ?? 0;
  const tau = cfg.discopopTau ?? 0.05;
  const s = score(cfg);
  const rc = (inp.rc ?? new Array(B).fill(0)).map(K);
  const rr = (inp.rr ?? new Array(B).fill(0)).map(K);
  const lc = (inp.lc ?? []).map(K);
  const lr = (inp.lr ?? []).map(K);
  const c = x.pc.map((v, i) => sub(v, rc[i]));
  const r = x.pr.map((v, i) => sub(v, rr[i]));
  const sc = c.map(s);
  const sr = r.map(s);
  const z = sc.map((v, i) => sub(v, sr[i]));
  const w = cfg.useWeighting ? inp.w! : new Array(B).fill(1);
  const types = cfg.lossTypes;
  const weights = cfg.lossWeights ?? types.map(() => 1);
  const half = K(1 / (2 * beta));
  const sigmoidLike = (v: D) => add(scl(logsig(v), -(1 - eps)), scl(logsig(neg(v)), -eps));

  let state = opts.state ?? { mean: 0, count: 0 };
  const bcoBatchMean = beta * (sum(sc).v + sum(sr).v) / (2 * B);
  let bcoDelta = NaN;
  if (types.includes("bco_pair")) {
    if (opts.training ?? true) {
      const n = state.count + 1;
      const m = Math.fround(
        state.mean + Math.fround(Math.fround(Math.fround(bcoBatchMean) - state.mean) / n),
      );
      state = { mean: m, count: n };
    }
    bcoDelta = opts.fixedDelta ?? state.mean;
  }
  const delta = K(bcoDelta);

  const byType: Record<string, D[]> = {};
  for (const type of types) {
    let l: D[];
    switch (type) {
      case "sigmoid":
        l = z.map((v) => sigmoidLike(scl(v, beta)));
        break;
      case "robust":
        l = z.map((v) =>
          scl(add(scl(logsig(scl(v, beta)), -(1 - eps)), scl(logsig(scl(v, -beta)), eps)), 1 / (1 - 2 * eps))
        );
        break;
      case "hinge":
        l = z.map((v) => relu(sub(K(1), scl(v, beta))));
        break;
      case "ipo":
        l = c.map((_, i) => sq(sub(sub(s(div(c[i], lc[i])), s(div(r[i], lr[i]))), half)));
        break;
      case "exo_pair":
        l = z.map((v) => {
          const xv = scl(v, beta);
          return add(
            mul(sig(xv), sub(logsig(xv), K(Math.log(1 - eps)))),
            mul(sig(neg(xv)), sub(logsig(neg(xv)), K(Math.log(eps)))),
          );
        });
        break;
      case "kto_pair": {
        const klc = clampMin(meanD(sc), 0);
        const klr = clampMin(meanD(sr), 0);
        l = [
          ...sc.map((v) => sub(K(1), sig(scl(sub(v, klr), beta)))),
          ...sr.map((v) => sub(K(1), sig(scl(sub(klc, v), beta)))),
        ];
        break;
      }
      case "bco_pair":
        l = sc.map((v, i) =>
          neg(add(logsig(sub(scl(v, beta), delta)), logsig(neg(sub(scl(sr[i], beta), delta)))))
        );
        break;
      case "sppo_hard":
        l = sc.map((v, i) => add(sq(sub(v, half)), sq(add(sr[i], half))));
        break;
      case "nca_pair":
        l = sc.map((v, i) =>
          neg(
            add(
              add(logsig(scl(v, beta)), scl(logsig(scl(v, -beta)), 0.5)),
              scl(logsig(scl(sr[i], -beta)), 0.5),
            ),
          )
        );
        break;
      case "aot":
      case "aot_pair": {
        // a stable ascending sort (ties keep index order)
        const up = (a: D[]) =>
          a.map((v, i) => [v, i] as const).sort((p, q) => p[0].v - q[0].v || p[1] - q[1]);
        const a = up(type === "aot" ? x.pc.map((v, i) => sub(v, x.pr[i])) : c).map((p) => p[0]);
        const b = up(type === "aot" ? rc.map((v, i) => sub(v, rr[i])) : r).map((p) => p[0]);
        l = a.map((v, i) => sigmoidLike(scl(sub(v, b[i]), beta)));
        break;
      }
      case "apo_zero":
        l = c.map((v, i) => add(sub(K(1), sig(scl(v, beta))), sig(scl(r[i], beta))));
        break;
      case "apo_down":
        l = c.map((v, i) => sub(add(sig(scl(v, beta)), K(1)), sig(scl(z[i], beta))));
        break;
      case "discopop":
        l = z.map((v) => {
          const xv = scl(v, beta);
          const m = sig(scl(xv, 1 / tau));
          return add(mul(neg(logsig(xv)), sub(K(1), m)), exp(add(neg(xv), logsig(scl(xv, 1 / tau)))));
        });
        break;
      case "sigmoid_norm":
        l = sc.map((v, i) => neg(logsig(scl(sub(div(v, lc[i]), div(sr[i], lr[i])), beta))));
        break;
      case "sft":
        l = new Array(B).fill(x.nll);
        break;
      default:
        throw new Error(`reference: unknown loss type ${type}`);
    }
    byType[type] = l.map((v, j) => scl(v, w[j % B]));
  }

  const singleKto = types.length === 1 && types[0] === "kto_pair";
  let losses: D[] = new Array(singleKto ? 2 * B : B).fill(K(0));
  let loss = K(0);
  types.forEach((type, k) => {
    const l = byType[type];
    loss = add(loss, scl(meanD(l), weights[k]));
    const f = !singleKto && l.length === 2 * B ? 0.5 : 1;
    losses = losses.map((v, i) => {
      let u = v;
      for (let j = i; j < l.length; j += losses.length) u = add(u, scl(l[j], weights[k] * f));
      return u;
    });
  });
  if (cfg.rpoAlpha !== null && cfg.rpoAlpha !== undefined) loss = add(loss, scl(x.nll, cfg.rpoAlpha));
  return { byType, losses, loss, bcoBatchMean, bcoDelta, state };
}

/** One call of the loss. `state` (bco_pair) is not modified; the new state is returned. */
export function refDpoLoss(
  inp: RefInputs,
  cfg: RefConfig,
  opts: { state?: RefState; training?: boolean } = {},
): RefOutputs {
  const B = inp.pc.length;
  const o = core(inp, { pc: inp.pc.map(K), pr: inp.pr.map(K), nll: K(inp.nll ?? 0) }, cfg, opts);
  const byType: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(o.byType)) byType[k] = v.map((d) => d.v);
  const ipoOnly = cfg.lossTypes.length === 1 && cfg.lossTypes[0] === "ipo";
  const rc = inp.rc ?? new Array(B).fill(0);
  const rr = inp.rr ?? new Array(B).fill(0);
  const chosenRewards = inp.pc.map((v, i) => cfg.beta * (v - rc[i]) / (ipoOnly ? inp.lc![i] : 1));
  const rejectedRewards = inp.pr.map((v, i) => cfg.beta * (v - rr[i]) / (ipoOnly ? inp.lr![i] : 1));
  const metrics = {
    "rewards/chosen": mean(chosenRewards),
    "rewards/rejected": mean(rejectedRewards),
    "rewards/accuracies": mean(chosenRewards.map((v, i) => (v > rejectedRewards[i] ? 1 : 0))),
    "rewards/margins": mean(chosenRewards.map((v, i) => v - rejectedRewards[i])),
    "logps/chosen": mean(inp.pc.map((v, i) => (ipoOnly ? v / inp.lc![i] : v))),
    "logps/rejected": mean(inp.pr.map((v, i) => (ipoOnly ? v / inp.lr![i] : v))),
  };
  return {
    byType,
    losses: o.losses.map((d) => d.v),
    loss: o.loss.v,
    chosenRewards,
    rejectedRewards,
    metrics,
    bcoBatchMean: o.bcoBatchMean,
    bcoDelta: o.bcoDelta,
    state: o.state,
  };
}

export interface RefGrads {
  pc: number[];
  pr: number[];
  nll: number;
}

/**
 * d loss / d(pc, pr, nll), or d (Σⱼ dyⱼ·lossesⱼ) / d(…) when `dy` is given, exactly (forward-mode dual numbers),
 * with the bco_pair running mean held at the value the forward used (SPEC: a constant).
 */
export function refDpoGrad(
  inp: RefInputs,
  cfg: RefConfig,
  opts: { state?: RefState; training?: boolean; dy?: number[] } = {},
): RefGrads {
  const B = inp.pc.length;
  const nll = inp.nll ?? 0;
  const seeded = (which: "pc" | "pr" | "nll", k: number) => {
    const x: DualInputs = {
      pc: inp.pc.map((v, i) => new D(v, which === "pc" && i === k ? 1 : 0)),
      pr: inp.pr.map((v, i) => new D(v, which === "pr" && i === k ? 1 : 0)),
      nll: new D(nll, which === "nll" ? 1 : 0),
    };
    const o = core(inp, x, cfg, opts);
    return opts.dy ? o.losses.reduce((a, v, j) => a + t(v.d, opts.dy![j]), 0) : o.loss.d;
  };
  return {
    pc: Array.from({ length: B }, (_, i) => seeded("pc", i)),
    pr: Array.from({ length: B }, (_, i) => seeded("pr", i)),
    nll: seeded("nll", 0),
  };
}
