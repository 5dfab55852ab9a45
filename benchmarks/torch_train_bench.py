#!/usr/bin/env python3
"""PyTorch eager counterpart of train_bench.cpp: the same GPT and training step, in tokens/s.

The model is nanoGPT's GPT-2 from tests/reference/gpt_reference.py (the one Ternion's losses
are checked against), fp32, dropout 0. The step is nanoGPT's with one micro-batch:
zero_grad(set_to_none=True), forward + cross-entropy, backward, clip_grad_norm_(1.0),
torch.optim.AdamW (two parameter groups, weight decay 0.1 on >= 2-D parameters, PyTorch's
default implementation for CPU tensors). Warmup steps are excluded; every step draws fresh
random tokens.

Threads: torch.set_num_threads(n). Set OMP_NUM_THREADS and OPENBLAS_NUM_THREADS to n as
well (scripts/bench_train.sh does), so that the BLAS PyTorch calls uses the same count.

Usage: torch_train_bench.py [--threads N] [--steps S] [--warmup W] [--layers L] [--embd C]
                            [--heads H] [--block T] [--vocab V] [--batch B]
Prints one line per timed step, then a JSON summary line starting with "RESULT ".
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from gpt_reference import GPT  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--embd", type=int, default=384)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--block", type=int, default=256)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1337)
    model = GPT(a.vocab, a.block, a.layers, a.heads, a.embd)
    for name, param in model.named_parameters():  # nanoGPT's init
        if name.endswith("c_proj.weight"):
            torch.nn.init.normal_(param, 0.0, 0.02 / (2 * a.layers) ** 0.5)
        elif param.dim() >= 2:
            torch.nn.init.normal_(param, 0.0, 0.02)
        elif name.endswith("bias"):
            torch.nn.init.zeros_(param)
    params = list(model.parameters())
    groups = [{"params": [q for q in params if q.dim() >= 2], "weight_decay": 0.1},
              {"params": [q for q in params if q.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=6e-4, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(42)

    tokens_per_step = a.batch * a.block
    secs = []
    for step in range(a.warmup + a.steps):
        x = torch.randint(0, a.vocab, (a.batch, a.block), generator=gen)
        y = torch.randint(0, a.vocab, (a.batch, a.block), generator=gen)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss_value = loss.item()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        s = time.perf_counter() - t0
        if step < a.warmup:
            continue
        secs.append(s)
        print(f"step {step - a.warmup}: {1e3 * s:.1f} ms, {tokens_per_step / s:.0f} tokens/s, "
              f"loss {loss_value:.4f}, grad norm {norm.item():.4f}")
    result = {
        "impl": "pytorch", "threads": a.threads, "steps": a.steps, "tokens_per_step": tokens_per_step,
        "tokens_per_sec_mean": tokens_per_step * a.steps / sum(secs),
        "tokens_per_sec_median": tokens_per_step / statistics.median(secs),
        "tokens_per_sec_best": tokens_per_step / min(secs),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
