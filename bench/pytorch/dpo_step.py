"""A same-machine PyTorch baseline for issue 17's run: DPO steps as TRL's DPOTrainer computes them, in plain
PyTorch (no transformers or TRL on these machines; torch's CPU wheel is in /opt/wheels: `pip install --no-deps`).

    python3 bench/pytorch/dpo_step.py ROWS.json [--checkpointing] [--steps N] [--threads 2]

ROWS.json comes from bench/pytorch/dump_rows.ts (the token ids webdpo trains on). The model is a Llama of
SmolLM2-135M's shape (hidden 576, 30 layers, 9/3 heads, intermediate 1536, vocabulary 49152, tied embeddings,
rope_theta 100000, RMSNorm eps 1e-5), random init (std 0.02), float32, eager. Each step does what TRL's DPO step
does: chosen and rejected rows padded on the right to one length and run as one batch (full logits of every
position; causal attention alone, since right padding never precedes a scored token), the frozen reference copy's forward under no_grad, per-sequence log-prob sums over the completion
tokens, the sigmoid loss (beta 0.1), backward, gradient clipping at 1.0, AdamW (lr 5e-5, linear decay, weight
decay 0). Batches of 2 pairs in file order; `--checkpointing` recomputes each layer in backward
(torch.utils.checkpoint). Prints seconds per step, the total, and the peak RSS (ru_maxrss). Without transformers'
module overhead it is, if anything, faster and leaner than TRL: a strict baseline.
"""
import argparse
import copy
import json
import resource
import time

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

H, L, NH, NKV, I, V, D = 576, 30, 9, 3, 1536, 49152, 64


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        lin = lambda o, i: torch.nn.Linear(i, o, bias=False)
        self.q, self.k, self.v, self.o = lin(NH * D, H), lin(NKV * D, H), lin(NKV * D, H), lin(H, NH * D)
        self.g, self.u, self.d = lin(I, H), lin(I, H), lin(H, I)
        self.n1, self.n2 = torch.nn.Parameter(torch.ones(H)), torch.nn.Parameter(torch.ones(H))

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        h = rms(x, self.n1)
        q = self.q(h).view(B, T, NH, D).transpose(1, 2)
        k = self.k(h).view(B, T, NKV, D).transpose(1, 2)
        v = self.v(h).view(B, T, NKV, D).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k, v = k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1)
        # rows are padded on the right, so causal masking alone keeps every real token from the padding
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(a.transpose(1, 2).reshape(B, T, NH * D))
        h = rms(x, self.n2)
        return x + self.d(F.silu(self.g(h)) * self.u(h))


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w


def rotate(x, cos, sin):
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Model(torch.nn.Module):
    def __init__(self, checkpointing=False):
        super().__init__()
        self.emb = torch.nn.Embedding(V, H)
        self.layers = torch.nn.ModuleList([Layer() for _ in range(L)])
        self.norm = torch.nn.Parameter(torch.ones(H))
        self.checkpointing = checkpointing
        for p in self.parameters():
            if p.ndim == 2:
                torch.nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        B, T = ids.shape
        inv = 1.0 / (100000 ** (torch.arange(0, D, 2).float() / D))
        f = torch.outer(torch.arange(T).float(), inv)
        c = torch.cat([f, f], -1)
        cos, sin = c.cos(), c.sin()
        x = self.emb(ids)
        for layer in self.layers:
            if self.checkpointing and torch.is_grad_enabled():
                x = checkpoint(layer, x, cos, sin, use_reentrant=False)
            else:
                x = layer(x, cos, sin)
        return rms(x, self.norm) @ self.emb.weight.T


def pad(seqs, value, T):
    return torch.tensor([s + [value] * (T - len(s)) for s in seqs])


def batch_logps(logits, labels):
    labels = labels[:, 1:].clone()
    logits = logits[:, :-1]
    mask = labels != -100
    labels[~mask] = 0
    per = torch.gather(logits.log_softmax(-1), 2, labels.unsqueeze(2)).squeeze(2)
    return (per * mask).sum(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rows")
    ap.add_argument("--checkpointing", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--beta", type=float, default=0.1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(17)
    data = json.load(open(a.rows))
    rows, pad_id = data["rows"], data["pad_token_id"]
    model = Model(a.checkpointing)
    ref = copy.deepcopy(model).requires_grad_(False).eval()
    steps = (len(rows) + a.batch - 1) // a.batch
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (steps - s) / steps))
    total = 0.0
    for s in range(steps):
        part = rows[s * a.batch : (s + 1) * a.batch]
        seqs = [r["chosen_input_ids"] for r in part] + [r["rejected_input_ids"] for r in part]
        labs = [r["chosen_labels"] for r in part] + [r["rejected_labels"] for r in part]
        T = max(len(x) for x in seqs)
        ids, labels = pad(seqs, pad_id, T), pad(labs, -100, T)
        t0 = time.perf_counter()
        with torch.no_grad():
            r = batch_logps(ref(ids), labels)
        p = batch_logps(model(ids), labels)
        n = len(part)
        logits = a.beta * ((p[:n] - p[n:]) - (r[:n] - r[n:]))
        loss = -F.logsigmoid(logits).mean()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        total += dt
        print(f"step {s + 1}: T {T}, loss {loss.item():.4f}, grad_norm {norm.item():.2f}, {dt:.1f} s", flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"total {total:.1f} s for {steps} steps; peak RSS {rss / 1e6:.2f} GB (ru_maxrss {rss} kB)")


if __name__ == "__main__":
    main()
