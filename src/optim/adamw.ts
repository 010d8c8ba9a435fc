/**
 * AdamW with torch.optim.AdamW's semantics, fused: each element's param, grad, exp_avg and exp_avg_sq are read
 * once and param, exp_avg and exp_avg_sq written once, several parameters a dispatch (up to 6 tensors, or
 * binding-sized ranges of a parameter larger than one binding: multi_tensor.ts), or one a dispatch on adapters
 * with fewer than 25 storage bindings per stage; both give the same bits. For step t of a parameter (its own count, as torch keeps it):
 *
 *   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 *   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
 *
 * with g the gradient times an optional GPU-resident scale (the clip coefficient of `clipGradNorm`), so
 * clipping costs no readback. The learning rate may change every step (`setLr`, or an `LRScheduler`); the step
 * count and the rates are passed to the kernel as dispatch parameters. Parameter groups carry their own
 * weight decay (`weightDecayGroups` builds Hugging Face's decay / no-decay split) and learning rate.
 *
 * Parameters whose `.grad` is null are skipped (no state change, no step), as in torch. State (exp_avg,
 * exp_avg_sq, step) is created at a parameter's first step, lives outside memory scopes, and is exposed by
 * `state()` / restored by `loadState()` for checkpoints.
 */
import { kernel } from "../gpu/kernel.ts";
import { type BufferBinding, copyBuffer, dispatch, grid1d } from "../gpu/queue.ts";
import { full, zeros } from "../tensor/create.ts";
import { Tensor } from "../tensor/tensor.ts";
import {
  type BindingLimitOptions,
  elementRange,
  offsetAlignment,
  rangeElements,
  splitRanges,
} from "../gpu/binding.ts";
import { clipGradNorm, gradNorm } from "./grad_norm.ts";
import { multiTensor, runs, slotCount, slotTable } from "./multi_tensor.ts";

const K = kernel("adamw.wgsl");
const K_MULTI = kernel("adamw_multi.wgsl");

/** Elements per invocation of the AdamW kernel (1 measured fastest on an H100: 2.8 TB/s vs 2.0 TB/s with 4). */
const ITEMS = 1;
const BLOCK = 256 * ITEMS;

/** Hyperparameters shared by every group unless a group sets its own. */
export interface AdamWOptions extends BindingLimitOptions {
  /** Learning rate (torch's default 1e-3). */
  lr?: number;
  /** Coefficients of the running averages of the gradient and its square (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** Added to the denominator after the square root (default 1e-8). */
  eps?: number;
  /**
   * Decoupled weight decay (default 0, as Hugging Face's TrainingArguments.weight_decay; torch's own
   * AdamW defaults to 0.01).
   */
  weightDecay?: number;
}

/** A group of parameters with its own hyperparameters (torch's param_groups). */
export interface ParamGroup {
  params: Tensor[];
  /** Names of the parameters (Hugging Face state-dict names), for `state()`; default: each tensor's `name`. */
  names?: (string | undefined)[];
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
}

/** A group as the optimizer holds it, every hyperparameter resolved. `lr` is the one the next step uses. */
export interface AdamWGroup {
  params: Tensor[];
  names: (string | undefined)[];
  lr: number;
  /** The learning rate the group started with (what schedules multiply, torch's `initial_lr`). */
  initialLr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

/** One parameter's optimizer state. `index` counts parameters across groups in order, as torch's state_dict. */
export interface AdamWParamState {
  index: number;
  name?: string;
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
}

/** Hyperparameters of a group, and the indices of its parameters. */
export interface AdamWGroupState {
  lr: number;
  initialLr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  params: number[];
}

/** The optimizer's state for a checkpoint: torch's state_dict, with tensors on the GPU. */
export interface AdamWState {
  params: AdamWParamState[];
  groups: AdamWGroupState[];
}

export interface StepOptions {
  /** A one-element tensor every gradient is multiplied by before the update (`clipGradNorm(...).coef`). */
  gradScale?: Tensor;
}

/** One dispatch's worth of one parameter: its bindings (a range of a parameter larger than one binding). */
interface Piece {
  /** Pieces of one run (parameter group and step count) share their hyperparameters. */
  run: string;
  hyper: Record<string, number>;
  count: number;
  param: BufferBinding;
  grad: BufferBinding;
  expAvg: BufferBinding;
  expAvgSq: BufferBinding;
}

/** Whether `next` cannot join `run` in one dispatch: a buffer it writes is bound there too, or one it reads written. */
function clash(run: readonly Piece[], next: Piece): boolean {
  const overlap = (a: BufferBinding, b: BufferBinding) =>
    a.buffer === b.buffer && a.offset! < b.offset! + b.size! && b.offset! < a.offset! + a.size!;
  for (const x of run) {
    for (const w of [next.param, next.expAvg, next.expAvgSq]) {
      if (w.buffer === x.grad.buffer || [x.param, x.expAvg, x.expAvgSq].some((b) => overlap(b, w))) {
        return true;
      }
    }
    if ([x.param, x.expAvg, x.expAvgSq].some((b) => b.buffer === next.grad.buffer)) return true;
  }
  return false;
}

interface Slot {
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
}

function checkHyper(where: string, lr: number, betas: readonly number[], eps: number, wd: number): void {
  if (!(lr >= 0) || !Number.isFinite(lr)) {
    throw new RangeError(`${where}: invalid learning rate ${lr} (need ≥ 0)`);
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new RangeError(`${where}: invalid eps ${eps} (need ≥ 0)`);
  if (betas.length !== 2) throw new RangeError(`${where}: betas must be two numbers, got [${betas}]`);
  for (const [i, b] of betas.entries()) {
    if (!(b >= 0 && b < 1)) {
      throw new RangeError(`${where}: invalid beta parameter at index ${i}: ${b} (need [0, 1))`);
    }
  }
  if (!(wd >= 0) || !Number.isFinite(wd)) {
    throw new RangeError(`${where}: invalid weightDecay ${wd} (need ≥ 0)`);
  }
}

function isGroupList(x: readonly (Tensor | ParamGroup)[]): x is ParamGroup[] {
  return x.length > 0 && !(x[0] instanceof Tensor);
}

export class AdamW {
  readonly groups: AdamWGroup[];
  private readonly slots = new Map<Tensor, Slot>();
  private readonly limits: BindingLimitOptions;
  private one: Tensor | null = null;
  /** Unused slots of a multi-tensor dispatch bind ranges of this. */
  private spare: Tensor | null = null;

  constructor(params: Tensor[] | ParamGroup[], opts: AdamWOptions = {}) {
    const lr = opts.lr ?? 1e-3;
    const betas = opts.betas ?? [0.9, 0.999];
    const eps = opts.eps ?? 1e-8;
    const wd = opts.weightDecay ?? 0;
    checkHyper("AdamW", lr, betas, eps, wd);
    this.limits = { maxBindingBytes: opts.maxBindingBytes };
    const groups: ParamGroup[] = isGroupList(params) ? params : [{ params: params as Tensor[] }];
    if (groups.length === 0 || groups.every((g) => g.params.length === 0)) {
      throw new RangeError("AdamW: got an empty parameter list");
    }
    const seen = new Set<Tensor>();
    this.groups = groups.map((g, gi) => {
      const r: AdamWGroup = {
        params: [...g.params],
        names: g.params.map((p, i) => g.names?.[i] ?? p.name),
        lr: g.lr ?? lr,
        initialLr: g.lr ?? lr,
        betas: [...(g.betas ?? betas)] as [number, number],
        eps: g.eps ?? eps,
        weightDecay: g.weightDecay ?? wd,
      };
      checkHyper(`AdamW group ${gi}`, r.lr, r.betas, r.eps, r.weightDecay);
      if (g.names && g.names.length !== g.params.length) {
        throw new RangeError(`AdamW group ${gi}: ${g.names.length} names for ${g.params.length} parameters`);
      }
      for (const p of r.params) {
        if (!(p instanceof Tensor)) throw new TypeError(`AdamW group ${gi}: parameters must be tensors`);
        if (p.dtype !== "f32") throw new TypeError(`AdamW group ${gi}: parameter ${p} is not f32`);
        if (seen.has(p)) {
          throw new RangeError("AdamW: some parameters appear in more than one parameter group");
        }
        seen.add(p);
      }
      return r;
    });
  }

  /** Every parameter, in index order. */
  get params(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** The learning rate of the first group. */
  get lr(): number {
    return this.groups[0].lr;
  }

  /** Sets the learning rate of every group. */
  setLr(lr: number): void {
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new RangeError(`invalid learning rate ${lr} (need ≥ 0)`);
    for (const g of this.groups) g.lr = lr;
  }

  /** One update of every parameter that has a gradient. Records GPU work only; nothing is read back. */
  step(opts: StepOptions = {}): void {
    const scale = opts.gradScale ?? this.unitScale();
    if (scale.size !== 1 || scale.dtype !== "f32") {
      throw new RangeError(`gradScale must be a one-element f32 tensor, got [${scale.shape}] ${scale.dtype}`);
    }
    scale.assertAlive();
    const per = rangeElements(this.limits);
    const pieces: Piece[] = [];
    for (const [gi, g] of this.groups.entries()) {
      const [beta1, beta2] = g.betas;
      for (const p of g.params) {
        const grad = p.grad;
        if (!grad) continue;
        if (grad.size !== p.size) {
          throw new RangeError(`gradient of shape [${grad.shape}] does not match its parameter [${p.shape}]`);
        }
        const s = this.slot(p);
        s.step++;
        const t = s.step;
        // As torch computes them, in float64 from Python floats.
        const hyper = {
          decay: 1 - g.lr * g.weightDecay,
          w1: 1 - beta1,
          beta2,
          w2: 1 - beta2,
          step_size: g.lr / (1 - beta1 ** t),
          bc2_sqrt: Math.sqrt(1 - beta2 ** t),
          eps: g.eps,
        };
        for (const r of splitRanges(p.size, per)) {
          pieces.push({
            run: `${gi}:${t}`,
            hyper,
            count: r.count,
            param: elementRange(p.binding, r),
            grad: elementRange(grad.binding, r),
            expAvg: elementRange(s.expAvg.binding, r),
            expAvgSq: elementRange(s.expAvgSq.binding, r),
          });
        }
      }
    }
    if (multiTensor()) {
      this.stepMulti(pieces, scale);
      return;
    }
    for (const x of pieces) {
      dispatch({
        kernel: K,
        constants: { ITEMS },
        params: { n: x.count, ...x.hyper },
        buffers: [x.param, x.grad, x.expAvg, x.expAvgSq, scale.binding],
        workgroups: grid1d(x.count, BLOCK),
      });
    }
  }

  /** The pieces in dispatches of up to SLOTS tensors (adamw_multi.wgsl), one parameter group and step a dispatch. */
  private stepMulti(pieces: Piece[], scale: Tensor): void {
    const slots = slotCount(K_MULTI, 1, 4);
    const align = offsetAlignment();
    if (!this.spare || this.spare.disposed) this.spare = zeros([(3 * slots * align) / 4]).keep();
    const spare = this.spare.binding.buffer;
    for (const run of runs(pieces, slots, (a, b) => a.run === b.run, clash)) {
      const table = slotTable(run.map((x) => x.count), 256, slots);
      const buffers: BufferBinding[] = [scale.binding];
      for (let k = 0; k < slots; k++) {
        const x = run[k];
        if (x) {
          buffers.push(x.param, x.grad, x.expAvg, x.expAvgSq);
        } else {
          // an unused slot: distinct 4-byte ranges of a spare buffer (no writable binding may alias another)
          const at = (j: number) => ({ buffer: spare, offset: (3 * k + j) * align, size: 4 });
          buffers.push(at(0), scale.binding, at(1), at(2));
        }
      }
      dispatch({
        kernel: K_MULTI,
        params: { ...run[0].hyper, ends: table.ends, ns: table.ns },
        buffers,
        workgroups: grid1d(table.groups * 256, 256),
      });
    }
  }

  /**
   * Clips the gradients' global norm to `maxNorm` (torch's clip_grad_norm_ coefficient, applied inside the
   * update) and steps; `maxNorm` ≤ 0 steps without clipping. Returns the unclipped norm as a one-element tensor,
   * for logging.
   */
  clipAndStep(maxNorm: number): Tensor {
    if (!(maxNorm > 0)) {
      // no clipping (max_grad_norm 0 or unset): the norm is still computed, for logging
      const norm = gradNorm(this.params, this.limits);
      this.step();
      return norm;
    }
    const { norm, coef } = clipGradNorm(this.params, maxNorm, this.limits);
    this.step({ gradScale: coef });
    coef.dispose();
    return norm;
  }

  /** Drops every gradient (torch's zero_grad(set_to_none=True)), releasing its memory. */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** The state of every parameter that has one (live tensors, not copies), and the groups' hyperparameters. */
  state(): AdamWState {
    const params: AdamWParamState[] = [];
    const groups: AdamWGroupState[] = [];
    let index = 0;
    for (const g of this.groups) {
      const ids: number[] = [];
      g.params.forEach((p, i) => {
        const s = this.slots.get(p);
        if (s) {
          const e: AdamWParamState = { index, step: s.step, expAvg: s.expAvg, expAvgSq: s.expAvgSq };
          if (g.names[i] !== undefined) e.name = g.names[i];
          params.push(e);
        }
        ids.push(index++);
      });
      groups.push({
        lr: g.lr,
        initialLr: g.initialLr,
        betas: [...g.betas],
        eps: g.eps,
        weightDecay: g.weightDecay,
        params: ids,
      });
    }
    return { params, groups };
  }

  /**
   * Restores a state from `state()` (of this or another optimizer over parameters of the same shapes): each
   * entry goes to the parameter of the same name when it has one that this optimizer knows, else to the same
   * index. Tensors are copied, so the source may be disposed afterwards. Groups, when given, must match this
   * optimizer's in number and sizes; their hyperparameters (the current learning rate included) are restored.
   */
  loadState(state: AdamWState): void {
    const all = this.params;
    const names = this.groups.flatMap((g) => g.names);
    const byName = new Map<string, number>();
    names.forEach((n, i) => n !== undefined && byName.set(n, i));
    if (state.groups && state.groups.length > 0) {
      if (state.groups.length !== this.groups.length) {
        throw new RangeError(
          `loadState: the state has ${state.groups.length} groups, this optimizer has ${this.groups.length}`,
        );
      }
      state.groups.forEach((sg, i) => {
        if (sg.params.length !== this.groups[i].params.length) {
          throw new RangeError(
            `loadState: group ${i} has ${sg.params.length} parameters in the state, ${
              this.groups[i].params.length
            } here`,
          );
        }
        checkHyper(`loadState group ${i}`, sg.lr, sg.betas, sg.eps, sg.weightDecay);
      });
    }
    const targets = state.params.map((e) => {
      const i = e.name !== undefined && byName.has(e.name) ? byName.get(e.name)! : e.index;
      const p = all[i];
      const what = e.name !== undefined ? `"${e.name}"` : `index ${e.index}`;
      if (p === undefined) throw new RangeError(`loadState: no parameter for the state entry ${what}`);
      for (const [k, t] of [["expAvg", e.expAvg], ["expAvgSq", e.expAvgSq]] as const) {
        if (!(t instanceof Tensor) || t.size !== p.size) {
          throw new RangeError(
            `loadState: ${k} of ${what} must be a tensor of ${p.size} elements (shape [${p.shape}]), got ` +
              (t instanceof Tensor ? `[${t.shape}]` : String(t)),
          );
        }
      }
      if (!Number.isInteger(e.step) || e.step < 0) {
        throw new RangeError(`loadState: invalid step ${e.step} for ${what}`);
      }
      return p;
    });
    state.params.forEach((e, k) => {
      const s = this.slot(targets[k]);
      s.step = e.step;
      if (e.expAvg.size > 0) {
        copyBuffer(e.expAvg.storage.buffer, 0, s.expAvg.storage.buffer, 0, e.expAvg.bytes);
        copyBuffer(e.expAvgSq.storage.buffer, 0, s.expAvgSq.storage.buffer, 0, e.expAvgSq.bytes);
      }
    });
    state.groups?.forEach((sg, i) => {
      const g = this.groups[i];
      g.lr = sg.lr;
      g.initialLr = sg.initialLr ?? sg.lr;
      g.betas = [sg.betas[0], sg.betas[1]];
      g.eps = sg.eps;
      g.weightDecay = sg.weightDecay;
    });
  }

  /** Releases the optimizer's GPU state. */
  dispose(): void {
    for (const s of this.slots.values()) {
      s.expAvg.dispose();
      s.expAvgSq.dispose();
    }
    this.slots.clear();
    this.one?.dispose();
    this.one = null;
    this.spare?.dispose();
    this.spare = null;
  }

  private slot(p: Tensor): Slot {
    let s = this.slots.get(p);
    if (!s) {
      s = { step: 0, expAvg: zeros(p.shape).keep(), expAvgSq: zeros(p.shape).keep() };
      this.slots.set(p, s);
    }
    return s;
  }

  private unitScale(): Tensor {
    if (!this.one || this.one.disposed) this.one = full([1], 1).keep();
    return this.one;
  }
}

/** A parameter Hugging Face's Trainer exempts from weight decay, judged by its state-dict name. */
export function isNoDecayName(name: string): boolean {
  const n = name.toLowerCase();
  // Trainer.get_decay_parameter_names: names containing "bias", "layernorm" or "rmsnorm", and a module named
  // "norm" or ending in "_norm" (Llama's model.norm); GPT-2's ln_1/ln_2/ln_f are nn.LayerNorm, which HF
  // excludes by type.
  return /bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)|(?:^|\.)ln_(?:\d+|f)(?:$|\.)/.test(n);
}

/**
 * Hugging Face's two parameter groups: weight decay `weightDecay` for most parameters, none for biases and
 * normalisation weights (`noDecay`, by default `isNoDecayName`). Both groups are returned, even if one is empty.
 */
export function weightDecayGroups(
  named: Iterable<readonly [string, Tensor]> | Map<string, Tensor>,
  weightDecay: number,
  noDecay: (name: string, p: Tensor) => boolean = isNoDecayName,
): ParamGroup[] {
  const decay: ParamGroup = { params: [], names: [], weightDecay };
  const none: ParamGroup = { params: [], names: [], weightDecay: 0 };
  for (const [name, p] of named) {
    const g = noDecay(name, p) ? none : decay;
    g.params.push(p);
    g.names!.push(name);
  }
  return [decay, none];
}
