/**
 * Float64 references for the optimizer (tests only): torch.optim.AdamW written from its documented algorithm,
 * the global gradient L2 norm, and clip_grad_norm_'s coefficient.
 */

/** One parameter's AdamW state in float64. */
export class RefAdamW {
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
  t = 0;

  constructor(init: ArrayLike<number>) {
    this.p = Float64Array.from(init);
    this.m = new Float64Array(init.length);
    this.v = new Float64Array(init.length);
  }

  /**
   * One step with gradient `g` times `scale`:
   *   p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
   *   m̂ = m/(1−β1^t); v̂ = v/(1−β2^t); p ← p − lr·m̂/(√v̂ + eps).
   */
  step(
    g: ArrayLike<number>,
    { lr, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0, scale = 1 }: {
      lr: number;
      betas?: [number, number];
      eps?: number;
      weightDecay?: number;
      scale?: number;
    },
  ): void {
    const [b1, b2] = betas;
    this.t++;
    const c1 = 1 - Math.pow(b1, this.t);
    const c2 = 1 - Math.pow(b2, this.t);
    for (let i = 0; i < this.p.length; i++) {
      const gi = g[i] * scale;
      this.p[i] *= 1 - lr * weightDecay;
      this.m[i] = b1 * this.m[i] + (1 - b1) * gi;
      this.v[i] = b2 * this.v[i] + (1 - b2) * gi * gi;
      const mHat = this.m[i] / c1;
      const vHat = this.v[i] / c2;
      this.p[i] -= (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
  }
}

/** √(Σ over every array of Σ x²), in float64. */
export function globalNorm(grads: ArrayLike<number>[]): number {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return Math.sqrt(s);
}

/** torch.nn.utils.clip_grad_norm_'s factor: min(1, maxNorm / (norm + 1e-6)). */
export function clipCoef(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + 1e-6));
}
