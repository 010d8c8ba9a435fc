/** Autograd: graph recording, backward(), grad mode and memory scopes, and the ops. */
import "./backward.ts";
export { backward } from "./backward.ts";
export { isGradEnabled, noGrad } from "./grad_mode.ts";
export { type BackwardFn, needsGrad, record } from "./record.ts";
export { keep, scope } from "./scope.ts";
export * from "./ops/mod.ts";
export { checkpoint } from "./checkpoint.ts";
export { enableGrad } from "./grad_mode.ts";
export { recomputeOnUse, setRecomputeActivations } from "./recompute.ts";
