/**
 * Reverse-mode differentiation over the graph recorded by ops (each output's `node` names its inputs and its
 * backward closure). Gradients of intermediate tensors are released as soon as their node has run; gradients of
 * leaves accumulate into `.grad` (in place when a `.grad` already exists, as PyTorch does across micro-batches),
 * and outlive any enclosing scope.
 */
import { copyBuffer } from "../gpu/queue.ts";
import { full } from "../tensor/create.ts";
import { type BackwardOptions, empty, setBackwardHook, type Tensor, view } from "../tensor/tensor.ts";
import { untrack } from "../tensor/track.ts";
import { addInPlace, addSame } from "./accumulate.ts";
import { noGrad } from "./grad_mode.ts";

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order; // inputs before the tensors computed from them
}

/** A tensor with its own storage (a copy when `t` shares its buffer with other views). */
function owned(t: Tensor): Tensor {
  if (t.storage.refs === 1) return t;
  const c = empty(t.shape);
  copyBuffer(t.storage.buffer, 0, c.storage.buffer, 0, t.bytes);
  t.dispose();
  return c;
}

/**
 * Runs backward from `root`, seeding with `grad` (default: 1 for a one-element root). With `releaseGraph`, each
 * computed tensor is disposed once its gradient has gone to its inputs (see BackwardOptions): every op that reads
 * it in backward (its consumers, and its own rule) has run by then, as the order is reverse-topological.
 */
export function backward(root: Tensor, grad?: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad) {
    throw new Error(
      "backward(): the tensor does not require grad (no input of its graph has requiresGrad set)",
    );
  }
  if (!grad && root.size !== 1) {
    throw new Error(`backward(): a gradient is needed for a non-scalar output of shape [${root.shape}]`);
  }
  if (grad && grad.size !== root.size) {
    throw new RangeError(`backward(): gradient shape [${grad.shape}] does not match output [${root.shape}]`);
  }
  noGrad(() => {
    const order = topoOrder(root);
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, grad ? view(grad, root.shape) : full(root.shape, 1));
    const accumulate = (t: Tensor, g: Tensor) => {
      const prev = grads.get(t);
      if (!prev) grads.set(t, g);
      else {
        grads.set(t, addSame(prev, g));
        prev.dispose();
        g.dispose();
      }
    };
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (!t.node) {
        // a leaf: accumulate into .grad
        if (t.grad && !t.grad.disposed) {
          addInPlace(t.grad, g);
          g.dispose();
        } else {
          const own = owned(g.shape.join() === t.shape.join() ? g : reshapeHandle(g, t.shape));
          untrack(own);
          t.grad = own;
        }
        continue;
      }
      const outs = t.node.backward(g);
      const inputs = t.node.inputs;
      for (let i = 0; i < inputs.length; i++) {
        const gi = outs[i];
        const inp = inputs[i];
        if (!gi || !inp.requiresGrad) continue;
        if (gi.size !== inp.size) {
          throw new Error(
            `backward of ${t.node.op}: gradient [${gi.shape}] for input ${i} does not match its shape [${inp.shape}]`,
          );
        }
        accumulate(inp, view(gi, inp.shape));
      }
      const distinct = new Set(outs.filter((o): o is Tensor => o !== null));
      for (const o of distinct) o.dispose();
      g.dispose();
      // the node's saved state is no longer needed once its gradients are out
      if (t !== root) {
        if (opts.releaseGraph) t.dispose();
        else t.node = null;
      }
    }
    for (const g of grads.values()) g.dispose();
    root.node = null;
  });
}

function reshapeHandle(g: Tensor, shape: readonly number[]): Tensor {
  const v = view(g, shape);
  g.dispose();
  return v;
}

setBackwardHook(backward);
