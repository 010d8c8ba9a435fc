"""Issue 17's decoding peer on this machine: transformers' `generate` on the model folder that
`deno run -A bench/hh_run.ts DIR` writes (SmolLM2-135M's shape, float32), counted as
`deno task bench --filter generate` counts webdpo: greedy, batch 1, a 32-token prompt, 64 new tokens with the KV
cache, no stop token, ms per new token with the prefill included, after a warm-up call; 2 threads.

    python3 bench/pytorch/hf_decode.py DIR [ROUNDS]

transformers comes from the machine's local PyPI mirror (`pip install trl==1.13.0` brings it, with torch from
/opt/wheels). bench/pytorch/decode.py is the same loop in plain PyTorch, without transformers' overhead.
"""
import os
import sys
import time

import torch


def main() -> None:
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(2)
    model_dir = os.path.join(sys.argv[1], "model")
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    vocab = model.config.vocab_size
    ids = torch.tensor([[3 + (i * 7919) % (vocab - 3) for i in range(32)]])
    kwargs = dict(do_sample=False, eos_token_id=None, pad_token_id=0, use_cache=True)
    with torch.no_grad():
        model.generate(ids, max_new_tokens=2, min_new_tokens=2, **kwargs)  # warm-up
        for _ in range(rounds):
            t0 = time.perf_counter()
            c0 = time.process_time()
            out = model.generate(ids, max_new_tokens=64, min_new_tokens=64, **kwargs)
            ms = (time.perf_counter() - t0) * 1000
            cpu = (time.process_time() - c0) * 1000
            n = out.shape[1] - ids.shape[1]
            print(f"transformers decode: {ms / n:.1f} ms/token, {n / (ms / 1000):.2f} tokens/s, "
                  f"cpu {cpu / n:.1f} ms/token ({n} tokens)")


if __name__ == "__main__":
    main()
