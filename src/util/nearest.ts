/**
 * The nearest valid name to a misspelt one, for "did you mean ...?" in error messages. It sits in src/util, below
 * every layer, so that any module that reads names from a user (config keys, schedule names, loss types) can use
 * the same rule.
 *
 * @module
 */

/** Levenshtein distance: the fewest single-character insertions, deletions and substitutions from a to b. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(up + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

const squash = (s: string) => s.toLowerCase().replace(/[_-]/g, "");

/**
 * The name of `candidates` nearest to `name`, comparing case- and separator-insensitively (so `learningRte`,
 * `learning_rte` and `LEARNING-RATE` all find learning_rate / learningRate), or null when nothing is close: the
 * distance may be at most 2, or a third of the name's length for longer names. Ties go to the candidate nearest
 * as spelt.
 */
export function nearestKey(name: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  let bestRaw = Infinity;
  const n = squash(name);
  for (const c of candidates) {
    const d = editDistance(n, squash(c));
    const raw = editDistance(name, c);
    if (d < bestD || (d === bestD && raw < bestRaw)) [best, bestD, bestRaw] = [c, d, raw];
  }
  return best !== null && bestD <= Math.max(2, Math.floor(n.length / 3)) ? best : null;
}
