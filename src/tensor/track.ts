/**
 * Memory scopes: every tensor created while a scope is open is recorded in it, so the scope can release
 * whatever its function did not return. Parameters, gradients and optimizer state are created outside
 * scopes (or `keep()`-ed) and live until disposed.
 */
export interface Disposable {
  dispose(): void;
}

const stack: Set<Disposable>[] = [];

/** Records a new tensor in the innermost open scope. */
export function track(t: Disposable): void {
  if (stack.length) stack[stack.length - 1].add(t);
}

/** Removes a tensor from every open scope, so it outlives them. */
export function untrack(t: Disposable): void {
  for (const s of stack) s.delete(t);
}

export function openScope(): Set<Disposable> {
  const s = new Set<Disposable>();
  stack.push(s);
  return s;
}

export function closeScope(s: Set<Disposable>, survivors: Set<Disposable>): void {
  const i = stack.lastIndexOf(s);
  if (i >= 0) stack.splice(i, 1);
  for (const t of s) {
    if (survivors.has(t)) {
      track(t); // hand the survivor to the enclosing scope, if any
    } else t.dispose();
  }
}

export function scopeDepth(): number {
  return stack.length;
}
