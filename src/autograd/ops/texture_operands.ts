/**
 * Kernels that read their main operands from textures, for llvmpipe (lavapipe): the subgroup matmul (A and B) and
 * attention's dK/dV pass (each query's q and dO rows, dkv_rows). There a storage-buffer load is a loop over the 8
 * SIMD lanes with a bounds check and a branch per lane and component, while a `textureLoad` of an rgba32float
 * texel is a branch-free gather: 0.46 against 0.73 ns per element loaded in a micro-benchmark. The subgroup
 * matmul, whose speed its loads set, ran 1.1–1.5× faster on the real-scale shapes, and attention's backward
 * 1.3–1.5× faster at T 1000, the copies included (bench/RESULTS.md, session 10).
 *
 * Before each dispatch, the byte range of each operand that the dispatch would bind is copied (`copyToTexture`,
 * recorded in order with the dispatches) into one of two textures 4096 texels wide (vec4 i at (i mod 4096,
 * ⌊i / 4096⌋)), kept between ops and grown as needed up to MAX_TEXTURE_BYTES each. The kernel, made from the
 * storage kernel's source by `textureOperands`, reads the same indices, so the sums and their bits are the same.
 * A range larger than a texture holds keeps the storage kernel. Copies of one op are made once for all its
 * dispatches (K windows, blocks of rows and columns, key windows), never across ops (their contents change).
 */
import { gpu } from "../../gpu/device.ts";
import { derivedKernel, type Kernel } from "../../gpu/kernel.ts";
import {
  type BufferBinding,
  bufferId,
  copyToTexture,
  flush,
  onEmptyCache,
  type TextureBinding,
} from "../../gpu/queue.ts";

/** Texels per texture row (a power of two: the kernel splits an index with a mask and a shift). */
export const TEXTURE_WIDTH = 4096;
/** The most bytes one operand texture holds (2 of them): 64 MiB, 1024 rows. */
export const MAX_TEXTURE_BYTES = 64 * 2 ** 20;
let maxTextureBytes = MAX_TEXTURE_BYTES;
let copiesMade = 0;

/** Lowers the bytes an operand texture may hold (null: MAX_TEXTURE_BYTES), for tests of the fallback. */
export function setTextureOperandCap(bytes: number | null): void {
  if (bytes !== null && !(bytes >= 16 * TEXTURE_WIDTH && bytes <= MAX_TEXTURE_BYTES)) {
    throw new RangeError(
      `setTextureOperandCap: ${bytes} is outside [${16 * TEXTURE_WIDTH}, ${MAX_TEXTURE_BYTES}]`,
    );
  }
  releaseOperandTextures();
  maxTextureBytes = bytes ?? MAX_TEXTURE_BYTES;
}

/** Operand ranges copied into textures so far (tests check which path a product took). */
export function textureCopies(): number {
  return copiesMade;
}

let override: boolean | null = null;

/**
 * Forces texture operands (the subgroup matmul's, attention's dK/dV pass's) on or off, or restores the adapter's
 * choice (null).
 */
export function setTextureOperands(on: boolean | null): void {
  override = on;
}

/** Whether those kernels read their operands from textures: by default on llvmpipe, where it was measured. */
export function textureOperandsOn(): boolean {
  return override ?? /llvmpipe/i.test(gpu().info.adapterName);
}

/**
 * `source` with storage bindings `a` and `b` (`var<storage, read> x: array<vec4f>`) turned into rgba32float
 * textures read through `x_at(i)`, texel i at (i mod TEXTURE_WIDTH, ⌊i / TEXTURE_WIDTH⌋), its comments removed
 * but for `// enables:` lines; every line stays where it was (compile messages keep their line numbers).
 * Every `x[...]` index expression must hold no brackets of its own.
 */
export function textureOperands(source: string, names: readonly string[]): string {
  const shift = Math.log2(TEXTURE_WIDTH);
  // comments dropped (their lines kept): they mention the operands too
  let out = source.replace(/\/\/(?!\s*enables:)[^\n]*/g, "");
  for (const x of names) {
    const decl = new RegExp(
      `(@group\\(0\\)\\s*@binding\\(\\d+\\)\\s*)var\\s*<\\s*storage\\s*,\\s*read\\s*>\\s*${x}\\s*:\\s*array<vec4f>;`,
    );
    if (!decl.test(out)) throw new Error(`textureOperands: no read-only vec4 storage binding named ${x}`);
    out = out.replace(
      decl,
      `$1var ${x}_tex: texture_2d<f32>; ` +
        `fn ${x}_at(i: u32) -> vec4f { return textureLoad(${x}_tex, vec2u(i & ${
          TEXTURE_WIDTH - 1
        }u, i >> ${shift}u), 0); }`,
    );
    out = out.replace(new RegExp(`\\b${x}\\[([^\\[\\]]*)\\]`, "g"), `${x}_at($1)`);
    if (new RegExp(`\\b${x}\\s*\\[`).test(out)) {
      throw new Error(`textureOperands: an index of ${x} holds brackets`);
    }
  }
  return out;
}

/**
 * `k` reading its storage bindings `names` (default: the matmul's A and B) from textures; made once per (k, names)
 * from `k`'s source (the registry's, or an unrolled kernel's).
 */
export function textureKernel(k: Kernel, names: readonly string[] = ["a", "b"]): Kernel {
  const key = names.join(",");
  return derivedKernel(
    k,
    `textures ${key}`,
    `${k.name} (texture operands${key === "a,b" ? "" : ` ${key}`})`,
    (src) => textureOperands(src, names),
  );
}

const textures: (GPUTexture | null)[] = [null, null];
let texturesDevice: GPUDevice | null = null;

/** The operand texture `slot` (0: A, 1: B) with room for `bytes`, grown if needed; null past MAX_TEXTURE_BYTES. */
function operandTexture(slot: 0 | 1, bytes: number): GPUTexture | null {
  if (bytes > maxTextureBytes) return null;
  const { device } = gpu();
  if (texturesDevice !== device) {
    textures[0] = textures[1] = null;
    texturesDevice = device;
  }
  const rows = Math.max(1, Math.ceil(bytes / 16 / TEXTURE_WIDTH));
  const cur = textures[slot];
  if (cur && cur.height >= rows) return cur;
  if (cur) {
    flush(); // recorded dispatches may read it: submitted before it goes
    cur.destroy();
  }
  const height = Math.min(maxTextureBytes / 16 / TEXTURE_WIDTH, 2 ** Math.ceil(Math.log2(rows)));
  const t = device.createTexture({
    label: `matmul operand ${"AB"[slot]}`,
    size: [TEXTURE_WIDTH, height],
    format: "rgba32float",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
  });
  textures[slot] = t;
  return t;
}

/** Frees the operand textures (the next product that needs them makes new ones); `emptyCache()` calls it. */
export function releaseOperandTextures(): void {
  if (!textures[0] && !textures[1]) return;
  if (texturesDevice === gpu().device) flush();
  for (const t of textures) t?.destroy();
  textures[0] = textures[1] = null;
}
onEmptyCache(releaseOperandTextures);

/**
 * One product's copies into the operand textures: `bind(slot, range)` returns the texture holding that range of a
 * buffer (copied now unless this product copied it already), or null when it does not fit.
 */
export class OperandCopies {
  private copied: (string | null)[] = [null, null];

  bind(slot: 0 | 1, range: BufferBinding): TextureBinding | null {
    const offset = range.offset ?? 0;
    const size = range.size ?? range.buffer.size - offset;
    const texture = operandTexture(slot, size);
    if (!texture) return null;
    const key = `${bufferId(range.buffer)}:${offset}:${size}`;
    if (this.copied[slot] !== key) {
      copyToTexture(range.buffer, offset, size, texture);
      copiesMade++;
      this.copied[slot] = key;
    }
    return { texture };
  }
}
