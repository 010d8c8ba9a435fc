/**
 * Loops unrolled in WGSL source text, for kernels whose loop bound is an `override` constant: a kernel's loops
 * `for (var d = 0u; d < D4; d++) { … }` become D4 copies of their body with `d` a literal, specialised for one
 * value of D4 (a separate Kernel per value, made from the registry's source of the original and cached).
 *
 * Why: llvmpipe (lavapipe) keeps a private array indexed by a loop variable in memory, and reads and writes it per
 * SIMD lane; with literal indices the array lives in registers. Attention's backward rows kernels index their
 * per-row arrays (a query, its gradient, D4 vec4s each) by `d`: unrolled, the same sums in the same order (the
 * bits did not change at D 64) ran 2.2–2.9× faster (bench/RESULTS.md, session 9). Only the CPU kernels take
 * this path; GPUs keep the loops (unmeasured there).
 *
 * The body must not `break` or `continue` (it is copied, not looped), nor hold a loop of the same variable.
 */
import { derivedKernel, type Kernel } from "./kernel.ts";

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * `source` with every `for (var <v> = 0u; <v> < <bound>; <v>++) { body }` replaced by `n` copies of `{ body }`
 * (`v` → `0u`, `1u`, …), the copies inside one block. Throws a RangeError for a body it cannot copy.
 */
export function unrollLoops(source: string, v: string, bound: string, n: number): string {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`unrollLoops: ${n} is not a loop count`);
  const header = new RegExp(
    `for\\s*\\(\\s*var\\s+${escape(v)}\\s*=\\s*0u\\s*;\\s*${escape(v)}\\s*<\\s*${escape(bound)}\\s*;\\s*` +
      `${escape(v)}\\s*\\+\\+\\s*\\)\\s*\\{`,
    "g",
  );
  const name = new RegExp(`\\b${escape(v)}\\b`, "g");
  let out = "";
  let at = 0;
  for (let m = header.exec(source); m; m = header.exec(source)) {
    let end = m.index + m[0].length;
    for (let depth = 1; depth > 0; end++) {
      if (end >= source.length) {
        throw new RangeError(`unrollLoops: the loop at offset ${m.index} is not closed`);
      }
      if (source[end] === "{") depth++;
      else if (source[end] === "}") depth--;
    }
    const body = source.slice(m.index + m[0].length, end - 1);
    if (/\b(break|continue)\b/.test(body) || new RegExp(header.source).test(body)) {
      throw new RangeError(`unrollLoops: the loop at offset ${m.index} breaks, continues or nests another`);
    }
    const copies = Array.from({ length: n }, (_, i) => `{${body.replace(name, `${i}u`)}}`);
    out += source.slice(at, m.index) + `{${copies.join("")}}`;
    at = end;
    header.lastIndex = end;
  }
  return out + source.slice(at);
}

/** `k` with its loops over `v` < `bound` unrolled `n` times (see unrollLoops); made once per (k, v, bound, n). */
export function unrolledKernel(k: Kernel, v: string, bound: string, n: number): Kernel {
  // line numbers of compile messages are the unrolled text's
  return derivedKernel(
    k,
    `unroll ${v}<${bound}=${n}`,
    `${k.name} (${bound} = ${n}, unrolled)`,
    (src) => unrollLoops(src, v, bound, n),
  );
}
