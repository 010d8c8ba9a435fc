/** Runs fn, then `restore()`: after the promise settles when fn is async, at once otherwise (also on a throw). */
export function around<T>(fn: () => T, restore: () => void): T {
  let r: T;
  try {
    r = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (r instanceof Promise) return r.finally(restore) as T;
  restore();
  return r;
}
