/**
 * int8 weight-only linear layers for a frozen base (QLoRA's point, in 8 bits): a weight W [OUT, IN] is stored as
 * q = round(W / s) in −127..127, packed four to a u32 (byte j of word g of row o = q[o, 4g + j]), with one f32
 * scale per output channel s[o] = max_k |W[o, k]| / 127 (0 for an all-zero row). That is 1 byte per weight plus
 * 4 per row instead of 4 per weight.
 *
 * `int8Linear(x, qw, bias)` = x·Ŵᵀ + b with Ŵ = s ⊙ q dequantised inside the kernel (kernels/int8_matmul.wgsl).
 * Ŵ is frozen: backward gives only dx = dy·Ŵ (and the bias gradient through `add` when the bias requires one).
 *
 * Kernels: forward_vec4 / backward_input_vec4 read x (dy) as vec4 rows when its row length is a multiple of 4, the
 * scalar entries otherwise (see the header of kernels/int8_matmul.wgsl).
 *
 * Large inputs: each storage binding covers at most maxStorageBufferBindingSize bytes, so the rows of x (and y)
 * are processed in chunks that fit; a packed weight larger than one binding throws a GpuLimitError. On CPU
 * adapters, whose invocations stop silently after about 65 535 loop iterations (src/gpu/loop_budget.ts), a sum
 * longer than INT8_WINDOW steps (over 4·INT8_WINDOW input features, or INT8_WINDOW output channels in backward)
 * runs in windows, one dispatch each, later ones adding to the output.
 */
import { add } from "../autograd/ops/binary.ts";
import { reshape } from "../autograd/ops/reshape.ts";
import { record } from "../autograd/record.ts";
import { alignedRange, BindingCap, rowsPerBinding } from "../gpu/binding.ts";
import { gpu } from "../gpu/device.ts";
import { GpuLimitError } from "../gpu/errors.ts";
import { kernel } from "../gpu/kernel.ts";
import { LOOP_BUDGET, loopLimited } from "../gpu/loop_budget.ts";
import { dispatch } from "../gpu/queue.ts";
import { tensor } from "../tensor/create.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";

const K = kernel("int8_matmul.wgsl");

/** A quantised weight on the GPU: `packed` (i32 tensor [out, ceil(in/4)] holding the bytes) and `scales` [out]. */
export interface QuantizedWeight {
  packed: Tensor;
  scales: Tensor;
  inFeatures: number;
  outFeatures: number;
}

/** A quantised weight on the host. */
export interface HostQuantized {
  /** [out, ceil(in/4)] words, byte j of word g of row o = q[o, 4g + j] (two's complement). */
  packed: Uint32Array;
  scales: Float32Array;
  /** The integer values q [out, in] (for tests and dequantisation). */
  q: Int8Array;
}

/**
 * Quantises a weight on the host. `layout` "out_in" reads w as [out, in] (nn.Linear); "in_out" reads it as
 * [in, out] (GPT-2's Conv1D) — the result is always per output channel, [out, in].
 */
export function quantizeInt8(
  w: ArrayLike<number>,
  outF: number,
  inF: number,
  layout: "out_in" | "in_out" = "out_in",
): HostQuantized {
  if (w.length !== outF * inF) {
    throw new RangeError(`quantizeInt8: ${w.length} values do not fill [${outF}, ${inF}]`);
  }
  const at = layout === "out_in"
    ? (o: number, k: number) => w[o * inF + k]
    : (o: number, k: number) => w[k * outF + o];
  const KW = Math.ceil(inF / 4);
  const packed = new Uint32Array(outF * KW);
  const scales = new Float32Array(outF);
  const q = new Int8Array(outF * inF);
  for (let o = 0; o < outF; o++) {
    let m = 0;
    for (let k = 0; k < inF; k++) {
      const v = at(o, k);
      if (!Number.isFinite(v)) throw new RangeError(`quantizeInt8: weight [${o}, ${k}] is ${v}`);
      m = Math.max(m, Math.abs(v));
    }
    const s = Math.fround(m / 127);
    scales[o] = s;
    for (let k = 0; k < inF; k++) {
      const v = s === 0 ? 0 : Math.max(-127, Math.min(127, Math.round(at(o, k) / s)));
      q[o * inF + k] = v;
      packed[o * KW + (k >> 2)] |= (v & 0xff) << (8 * (k & 3));
    }
  }
  return { packed, scales, q };
}

/** Ŵ = s ⊙ q as f32, in the given layout ([out, in] or [in, out]). */
export function dequantizeInt8(
  h: { q: Int8Array; scales: Float32Array },
  outF: number,
  inF: number,
  layout: "out_in" | "in_out" = "out_in",
): Float32Array {
  const w = new Float32Array(outF * inF);
  for (let o = 0; o < outF; o++) {
    for (let k = 0; k < inF; k++) {
      const v = h.scales[o] * h.q[o * inF + k];
      if (layout === "out_in") w[o * inF + k] = v;
      else w[k * outF + o] = v;
    }
  }
  return w;
}

/** Unpacks the q values of packed words (the inverse of the packing in `quantizeInt8`). */
export function unpackInt8(packed: Uint32Array | Int32Array, outF: number, inF: number): Int8Array {
  const KW = Math.ceil(inF / 4);
  const q = new Int8Array(outF * inF);
  for (let o = 0; o < outF; o++) {
    for (let k = 0; k < inF; k++) q[o * inF + k] = (packed[o * KW + (k >> 2)] >> (8 * (k & 3))) & 0xff;
  }
  return q;
}

/** Uploads a host-quantised weight. */
export function uploadQuantized(h: HostQuantized, outF: number, inF: number): QuantizedWeight {
  const KW = Math.ceil(inF / 4);
  return {
    packed: tensor(new Int32Array(h.packed.buffer, h.packed.byteOffset, h.packed.length), [outF, KW], {
      dtype: "i32",
    }),
    scales: tensor(h.scales, [outF]),
    inFeatures: inF,
    outFeatures: outF,
  };
}

const cap = new BindingCap("setInt8BindingLimit", 1024);

/** Caps the bytes of one binding (tests use it to exercise the row chunking); null for the device limit. */
export function setInt8BindingLimit(bytes: number | null): void {
  cap.set(bytes);
}

/**
 * Loop steps of one int8 invocation per window on CPU adapters (packed words in forward, output channels in the
 * scalar backward, groups of 4 in the vec4 backward): the step loop, then at most 20 iterations loading the last
 * partial word and 30 storing, counted as if nothing were unrolled, stay under LOOP_BUDGET. A multiple of 16.
 */
export const INT8_WINDOW = Math.floor((LOOP_BUDGET - 52) / 16) * 16;

/** A binding of `rows` rows of `cols` floats from row r0, aligned down; the element offset inside it. */
function rowRange(t: Tensor, r0: number, rows: number, cols: number) {
  return alignedRange(t.storage.buffer, r0 * cols * 4, (r0 + rows) * cols * 4);
}

/** out [N, outCols] = a [N, aCols] · (Ŵᵀ or Ŵ), chunked over rows. */
function run(entry: "forward" | "backward_input", a: Tensor, qw: QuantizedWeight, N: number): Tensor {
  const IN = qw.inFeatures, OUT = qw.outFeatures, KW = Math.ceil(IN / 4);
  const [aCols, oCols] = entry === "forward" ? [IN, OUT] : [OUT, IN];
  const out = empty([N, oCols]);
  if (N === 0 || oCols === 0) return out;
  const limit = cap.limit();
  const { info } = gpu();
  const wBytes = OUT * KW * 4;
  if (wBytes > limit) {
    throw new GpuLimitError(
      `int8Linear: the packed weight [${OUT}, ${IN}] needs ${wBytes} bytes in one storage binding, more than ` +
        `this device allows (${limit} bytes, maxStorageBufferBindingSize of ${info.adapterName})`,
    );
  }
  const maxWg = info.limits.maxComputeWorkgroupsPerDimension;
  const widest = Math.max(aCols, oCols) * 4;
  let chunk = Math.min(N, 16 * maxWg, rowsPerBinding(widest, limit));
  if (chunk < 1) {
    throw new GpuLimitError(
      `int8Linear: one row of ${
        Math.max(aCols, oCols)
      } floats exceeds this device's binding limit (${limit} bytes)`,
    );
  }
  if (entry === "forward" && Math.ceil(OUT / 64) > maxWg) {
    throw new GpuLimitError(
      `int8Linear: ${OUT} output channels exceed ${64 * maxWg} (workgroup count limit)`,
    );
  }
  if (entry === "backward_input" && Math.ceil(KW / 16) > maxWg) {
    throw new GpuLimitError(`int8Linear: ${IN} input features exceed ${64 * maxWg} (workgroup count limit)`);
  }
  chunk = Math.max(1, chunk);
  for (let r0 = 0; r0 < N; r0 += chunk) {
    const n = Math.min(chunk, N - r0);
    const ra = rowRange(a, r0, n, aCols);
    const ro = rowRange(out, r0, n, oCols);
    // vec4 reads of a when its rows are whole vec4s (the offset then is too: alignments are multiples of 16)
    const vec4 = aCols % 4 === 0 && ra.elemOff % 4 === 0;
    // the reduction (forward: KW packed words; backward: OUT channels, four per step in vec4) in windows
    const total = entry === "forward" ? KW : OUT;
    const kn = !loopLimited() ? total : entry === "backward_input" && vec4 ? 4 * INT8_WINDOW : INT8_WINDOW;
    for (let k0 = 0; k0 === 0 || k0 < total; k0 += kn) {
      dispatch({
        kernel: K,
        entry: vec4 ? `${entry}_vec4` : entry,
        params: { N: n, IN, OUT, KW, aOff: ra.elemOff, outOff: ro.elemOff, k0, kn, accumulate: k0 > 0 },
        buffers: [ra.binding, qw.packed.binding, qw.scales.binding, ro.binding, ra.binding],
        workgroups: entry === "forward"
          ? [Math.ceil(OUT / 64), Math.ceil(n / 16)]
          : [Math.ceil(KW / 16), Math.ceil(n / 16)],
      });
    }
  }
  return out;
}

/** y = x·Ŵᵀ for x [N, in] (no graph recorded). */
export function int8MatmulRaw(x: Tensor, qw: QuantizedWeight): Tensor {
  return run("forward", x, qw, x.shape[0]);
}

/** dx = dy·Ŵ for dy [N, out] (no graph recorded). */
export function int8MatmulBackwardRaw(dy: Tensor, qw: QuantizedWeight): Tensor {
  return run("backward_input", dy, qw, dy.shape[0]);
}

/** y = x·Ŵᵀ (+ bias) for x [..., in]: the frozen quantised weight's linear layer, recorded for backward (dx only). */
export function int8Linear(x: Tensor, qw: QuantizedWeight, bias: Tensor | null = null): Tensor {
  x.assertAlive();
  qw.packed.assertAlive();
  if (x.dtype !== "f32") throw new TypeError(`int8Linear: expected an f32 input, got ${x.dtype}`);
  const inF = x.shape[x.ndim - 1];
  if (x.ndim < 1 || inF !== qw.inFeatures) {
    throw new RangeError(
      `int8Linear: input [${x.shape}] does not match the quantised weight [${qw.outFeatures}, ${qw.inFeatures}]`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== qw.outFeatures)) {
    throw new RangeError(`int8Linear: bias [${bias.shape}] does not match ${qw.outFeatures} output channels`);
  }
  const rows = x.size / inF;
  const x2 = reshape(x, [rows, inF]);
  let y = record("int8_matmul", [x2], int8MatmulRaw(x2, qw), (dy) => [int8MatmulBackwardRaw(dy, qw)]);
  if (bias) y = add(y, bias);
  return reshape(y, [...x.shape.slice(0, -1), qw.outFeatures]);
}
