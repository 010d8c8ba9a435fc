"""A same-machine PyTorch baseline for `deno task bench --filter generate`: greedy decoding of a Llama of
SmolLM2-135M's shape (random init, float32, eager, 2 threads), batch 1, a 32-token prompt, 64 new tokens with a
KV cache; ms per new token with the prefill included, as the bench counts it. Plain PyTorch, without
transformers' module and generate() overhead (transformers itself is not installable on these machines).

    python3 bench/pytorch/decode.py [ROUNDS]
"""
import sys
import time

import torch

torch.manual_seed(0)
torch.set_num_threads(2)
H, L, NH, NKV, I, V, D = 576, 30, 9, 3, 1536, 49152, 64
def lin(o, i): return (torch.randn(o, i) * 0.02)
emb = lin(V, H)
layers = [dict(ln1=torch.ones(H), q=lin(NH*D, H), k=lin(NKV*D, H), v=lin(NKV*D, H), o=lin(H, NH*D),
               ln2=torch.ones(H), g=lin(I, H), u=lin(I, H), d=lin(H, I)) for _ in range(L)]
lnf = torch.ones(H)
inv = 1.0 / (100000 ** (torch.arange(0, D, 2).float() / D))
def rms(x, w): return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w
def rope(x, pos):
    f = torch.outer(pos.float(), inv); c = torch.cat([f, f], -1)
    cos, sin = c.cos(), c.sin()
    x1, x2 = x[..., :D//2], x[..., D//2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin
@torch.no_grad()
def step(ids, cache, start):
    T = ids.shape[0]
    x = emb[ids]
    pos = torch.arange(start, start + T)
    for li, p in enumerate(layers):
        h = rms(x, p["ln1"])
        q = (h @ p["q"].T).view(T, NH, D).transpose(0, 1)
        k = (h @ p["k"].T).view(T, NKV, D).transpose(0, 1)
        v = (h @ p["v"].T).view(T, NKV, D).transpose(0, 1)
        q, k = rope(q, pos), rope(k, pos)
        if cache[li] is not None:
            k = torch.cat([cache[li][0], k], 1); v = torch.cat([cache[li][1], v], 1)
        cache[li] = (k, v)
        kk = k.repeat_interleave(NH // NKV, 0); vv = v.repeat_interleave(NH // NKV, 0)
        a = torch.nn.functional.scaled_dot_product_attention(q, kk, vv, is_causal=(T > 1))
        x = x + a.transpose(0, 1).reshape(T, NH * D) @ p["o"].T
        h = rms(x, p["ln2"])
        x = x + (torch.nn.functional.silu(h @ p["g"].T) * (h @ p["u"].T)) @ p["d"].T
    return rms(x[-1:], lnf) @ emb.T
def generate(n):
    ids = torch.tensor([3 + (i * 7919) % (V - 3) for i in range(32)])
    cache = [None] * L
    logits = step(ids, cache, 0); out = []
    for i in range(n):
        t = int(logits.argmax()); out.append(t)
        if i + 1 < n: logits = step(torch.tensor([t]), cache, 32 + i)
    return out
generate(2)
for r in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
    t0 = time.perf_counter(); c0 = time.process_time(); out = generate(64); dt = time.perf_counter() - t0
    print(f"torch decode: {dt*1000/64:.1f} ms/token, {64/dt:.2f} tokens/s, cpu {(time.process_time()-c0)*1000/64:.1f} ms/token")
