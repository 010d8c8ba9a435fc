/**
 * Rotary position embedding as Hugging Face transformers applies it (`apply_rotary_pos_emb` with rotate_half:
 * the rotary dims split into halves [x1 | x2], out = x·cos + rotate_half(x)·sin, rotate_half(x) = [−x2, x1]).
 *
 * Layout: q or k as [B, H, T, D] (the default, `layout: "bhtd"`) or [B, T, H, D] (`layout: "bthd"`), contiguous;
 * the output has the input's shape and layout. Position ids are an i32 tensor [B, T], one position per token, so
 * left-padded batches and generation with a KV cache (positions starting past 0) work.
 *
 * inv_freq_i = theta^(−2i/R) for i < R/2 (R = rotaryDim, default D), optionally rescaled by the `llama3`
 * rope_scaling rule; it is computed on the CPU in float64, rounded to f32 and uploaded once per configuration
 * (cached). The kernel computes angle = f32(position)·inv_freq in f32, then cos/sin of that f32 angle (accurate to
 * about 1e-7; see kernels/rope.wgsl), as transformers does in float32. Note: transformers builds inv_freq itself
 * with float32 tensor ops, so its values can differ from the float64-then-rounded ones here in the last bit.
 * Partial rotary (R < D, Hugging Face's partial_rotary_factor) rotates the first R dims and passes the rest through.
 *
 * Backward: the inverse rotation (by −angle) of dy; positions get no gradient.
 */
import { gpu } from "../../gpu/device.ts";
import { kernel } from "../../gpu/kernel.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { tensor } from "../../tensor/create.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

const K = kernel("rope.wgsl");

/** The `llama3` rope_scaling of Llama 3.1+ configs (Hugging Face `rope_scaling` with rope_type "llama3"). */
export interface Llama3RopeScaling {
  ropeType: "llama3";
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface RopeConfig {
  /** Head dimension D of the tensors rotated. */
  headDim: number;
  /** `rope_theta` (default 10000). */
  theta?: number;
  /** Rotated dims R ≤ D, even (default D): Hugging Face's head_dim · partial_rotary_factor. */
  rotaryDim?: number;
  /** `rope_scaling` (null or absent: none). */
  scaling?: Llama3RopeScaling | null;
}

export interface RopeOptions {
  /** Memory layout of x: "bhtd" = [B, H, T, D] (default) or "bthd" = [B, T, H, D]. */
  layout?: "bhtd" | "bthd";
}

/** A configuration's head dim D, rotary dim R and theta, checked. */
export function resolveRope(cfg: RopeConfig): { D: number; R: number; theta: number } {
  const D = cfg.headDim;
  const R = cfg.rotaryDim ?? D;
  const theta = cfg.theta ?? 10000;
  if (!Number.isInteger(D) || D <= 0) {
    throw new RangeError(`rope: headDim must be a positive integer, got ${D}`);
  }
  if (!Number.isInteger(R) || R <= 0 || R % 2 !== 0 || R > D) {
    throw new RangeError(`rope: rotaryDim must be an even integer in [2, headDim = ${D}], got ${R}`);
  }
  if (!(theta > 0) || !Number.isFinite(theta)) throw new RangeError(`rope: theta must be > 0, got ${theta}`);
  const s = cfg.scaling;
  if (s) {
    if (s.ropeType !== "llama3") {
      throw new RangeError(
        `rope: unsupported rope_scaling type "${s.ropeType}" (supported: "llama3", or none)`,
      );
    }
    for (const k of ["factor", "lowFreqFactor", "highFreqFactor", "originalMaxPositionEmbeddings"] as const) {
      if (!(s[k] > 0) || !Number.isFinite(s[k])) {
        throw new RangeError(`rope: rope_scaling.${k} must be a positive number, got ${s[k]}`);
      }
    }
    if (!(s.highFreqFactor > s.lowFreqFactor)) {
      throw new RangeError(
        `rope: rope_scaling needs highFreqFactor > lowFreqFactor, got ${s.highFreqFactor} ≤ ${s.lowFreqFactor}`,
      );
    }
  }
  return { D, R, theta };
}

/** inv_freq [R/2] in float64: theta^(−2i/R), then the llama3 rescaling when configured. */
export function ropeInvFreq(cfg: RopeConfig): Float64Array {
  const { R, theta } = resolveRope(cfg);
  const out = new Float64Array(R / 2);
  for (let i = 0; i < R / 2; i++) out[i] = 1 / Math.pow(theta, (2 * i) / R);
  const s = cfg.scaling;
  if (s) {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < out.length; i++) {
      const f = out[i];
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) out[i] = f / s.factor;
      else if (wavelen < highWavelen) out[i] = f;
      else {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) /
          (s.highFreqFactor - s.lowFreqFactor);
        out[i] = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
  }
  return out;
}

function cacheKey(cfg: RopeConfig): string {
  const { R, theta } = resolveRope(cfg);
  const s = cfg.scaling;
  return s
    ? `${R}|${theta}|llama3|${s.factor}|${s.lowFreqFactor}|${s.highFreqFactor}|${s.originalMaxPositionEmbeddings}`
    : `${R}|${theta}`;
}

const invFreqCache = new Map<string, { device: GPUDevice; t: Tensor }>();

/** The f32 inv_freq tensor of a configuration, uploaded once per device and kept (outside every scope). */
export function ropeInvFreqTensor(cfg: RopeConfig): Tensor {
  const key = cacheKey(cfg);
  const { device } = gpu();
  const hit = invFreqCache.get(key);
  if (hit && hit.device === device && !hit.t.disposed) return hit.t;
  const t = tensor(Float32Array.from(ropeInvFreq(cfg)), [resolveRope(cfg).R / 2]).keep();
  t.name = `rope.inv_freq[${key}]`;
  invFreqCache.set(key, { device, t });
  return t;
}

function checkArgs(x: Tensor, positions: Tensor, cfg: RopeConfig, layout: "bhtd" | "bthd") {
  const { D, R } = resolveRope(cfg);
  if (layout !== "bhtd" && layout !== "bthd") {
    throw new RangeError(`rope: layout must be "bhtd" or "bthd", got ${JSON.stringify(layout)}`);
  }
  if (x.dtype !== "f32") throw new TypeError(`rope: x must be an f32 tensor, got ${x.dtype}`);
  const want = layout === "bhtd" ? "[B, H, T, D]" : "[B, T, H, D]";
  if (x.ndim !== 4) throw new RangeError(`rope: x must be ${want}, got [${x.shape}]`);
  const [B, A1, A2, Dx] = x.shape;
  const [H, T] = layout === "bhtd" ? [A1, A2] : [A2, A1];
  if (Dx !== D) throw new RangeError(`rope: x's last dimension ${Dx} must equal headDim ${D}`);
  if (positions.dtype !== "i32") {
    throw new TypeError(`rope: positions must be an i32 tensor, got ${positions.dtype}`);
  }
  if (positions.ndim !== 2 || positions.shape[0] !== B || positions.shape[1] !== T) {
    throw new RangeError(`rope: positions must have shape [B, T] = [${B}, ${T}], got [${positions.shape}]`);
  }
  return { B, H, T, D, R };
}

/** The raw rotation (no graph): dir = 1 rotates by +angle (forward), dir = −1 by −angle (backward). */
export function ropeRaw(
  x: Tensor,
  positions: Tensor,
  cfg: RopeConfig,
  dir: 1 | -1,
  opts: RopeOptions = {},
): Tensor {
  const layout = opts.layout ?? "bhtd";
  const { B, H, T, D, R } = checkArgs(x, positions, cfg, layout);
  const out = empty(x.shape);
  const rows = B * H * T;
  const total = rows * (R / 2 + (D - R));
  if (total > 0) {
    dispatch({
      kernel: K,
      params: { rows, H, T, D, R, bthd: layout === "bthd", dir, total },
      buffers: [x.binding, positions.binding, ropeInvFreqTensor(cfg).binding, out.binding],
      workgroups: grid1d(total, 128),
    });
  }
  return out;
}

/**
 * Applies rotary position embedding to q or k, x [B, H, T, D] (or [B, T, H, D] with layout "bthd"), with
 * positions [B, T] (i32). Differentiable in x.
 */
export function rope(x: Tensor, positions: Tensor, cfg: RopeConfig, opts: RopeOptions = {}): Tensor {
  const out = ropeRaw(x, positions, cfg, 1, opts);
  return record("rope", [x, positions], out, (dy) => [ropeRaw(dy, positions, cfg, -1, opts), null]);
}
