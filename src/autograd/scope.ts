/**
 * `scope(fn)`: every tensor created while `fn` runs is released when it returns, except the tensors it returns
 * (a tensor, or tensors inside a returned array or plain object, searched two levels deep) and tensors marked
 * with `keep()`. Gradients written to leaves by backward() are kept automatically. Works with async functions.
 */
import { Tensor } from "../tensor/tensor.ts";
import { closeScope, type Disposable, openScope } from "../tensor/track.ts";

function collect(v: unknown, out: Set<Disposable>, depth = 0): void {
  if (v instanceof Tensor) out.add(v);
  else if (depth < 3 && v && typeof v === "object") {
    if (Array.isArray(v)) { for (const x of v) collect(x, out, depth + 1); }
    else if (Object.getPrototypeOf(v) === Object.prototype || v instanceof Map) {
      const values = v instanceof Map ? [...v.values()] : Object.values(v);
      for (const x of values) collect(x, out, depth + 1);
    }
  }
}

export function scope<T>(fn: () => T): T {
  const s = openScope();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    closeScope(s, new Set());
    throw e;
  }
  if (result instanceof Promise) {
    return result.then((r) => {
      const keep = new Set<Disposable>();
      collect(r, keep);
      closeScope(s, keep);
      return r;
    }, (e) => {
      closeScope(s, new Set());
      throw e;
    }) as T;
  }
  const keep = new Set<Disposable>();
  collect(result, keep);
  closeScope(s, keep);
  return result;
}

/** Keeps a tensor alive past every enclosing scope. */
export function keep<T extends Tensor>(t: T): T {
  return t.keep();
}
