/** Whether ops record a graph for backward. `noGrad(fn)` turns recording off while `fn` runs. */
let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

/** Runs `fn` without recording gradients (sync or async; restored when the returned promise settles). */
export function noGrad<T>(fn: () => T): T {
  const prev = enabled;
  enabled = false;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    enabled = prev;
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => (enabled = prev)) as T;
  }
  enabled = prev;
  return result;
}

/** Runs `fn` with gradient recording on (inside a backward closure, e.g. to recompute a checkpointed layer). */
export function enableGrad<T>(fn: () => T): T {
  const prev = enabled;
  enabled = true;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}
