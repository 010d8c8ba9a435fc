"""Issue 17's peer on this machine: TRL's DPOTrainer (transformers + PyTorch CPU) on the run that
`deno run -A bench/hh_run.ts DIR` writes for `webdpo train`: the same model folder, the same 6 hh-rlhf pairs,
sigmoid loss, batch 2, max_length 512, one epoch (3 steps), a frozen reference copy, 2 threads.

    python3 bench/pytorch/trl_dpo.py DIR [--checkpointing] [--bf16] [--lora] [--order 1,5,2,4,0,3] [--out OUT]

TRL 1.13's DPOConfig defaults gradient_checkpointing and bf16 (autocast) to True and learning_rate to 1e-6; this
script sets the first two False unless asked and the rate to webdpo's 5e-5, so that the default run does what
webdpo's `full.yaml` does in float32. TRL 1.13 has no
max_prompt_length: prompts are not cut separately (the hh-rlhf pairs fit in 512 tokens either way). The
packages come from the machine's local PyPI mirror: `pip install trl==1.13.0` (with torch from /opt/wheels).
Prints TRL's train_runtime and the losses; run it under `/usr/bin/time -v` for the peak RSS.
"""
import argparse
import gzip
import json
import os
import sys

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--checkpointing", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--order",
        default=None,
        help="comma-separated row indices: the rows in this order, unshuffled (webdpo's epoch order, to compare "
        "step by step; `epochOrder(seed, 0, n)` of src/train/plan.ts gives it)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    here = os.path.dirname(os.path.abspath(__file__))
    data = os.path.join(here, "..", "..", "tests", "fixtures", "datasets", "hh-rlhf-sample.jsonl.gz")
    with gzip.open(data, "rt") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if args.order:
        rows = [rows[int(i)] for i in args.order.split(",")]
    dataset = Dataset.from_list([{"chosen": r["chosen"], "rejected": r["rejected"]} for r in rows])

    model_dir = os.path.join(args.dir, "model")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = DPOConfig(
        output_dir=args.out or os.path.join(args.dir, "out-trl"),
        loss_type=["sigmoid"],
        learning_rate=5e-5,  # webdpo's default (transformers'); TRL 1.13's DPOConfig defaults to 1e-6
        per_device_train_batch_size=2,
        max_length=512,
        num_train_epochs=1,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        gradient_checkpointing=args.checkpointing,
        bf16=args.bf16,
        use_cpu=True,
        dataloader_num_workers=0,
        **({"train_sampling_strategy": "sequential"} if args.order else {}),
    )
    peft_config = None
    if args.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = DPOTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config
    )
    result = trainer.train()
    losses = [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]
    for h in trainer.state.log_history:
        if "loss" in h:
            print(json.dumps({k: h[k] for k in sorted(h) if k.startswith(("loss", "grad_norm", "rewards", "logps"))}))
    print(json.dumps({"train_runtime": result.metrics["train_runtime"], "losses": losses,
                      "checkpointing": args.checkpointing, "bf16": args.bf16, "lora": args.lora}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
