#!/usr/bin/env python3
"""Independent PyTorch reference for Ternion's GPT training step; writes golden.json.

The model is nanoGPT's GPT-2 (model.py, written out again here so that nothing is shared
with Ternion): pre-LayerNorm blocks, fused c_attn, GELU tanh, tied lm head, LayerNorm
eps 1e-5 with bias, no dropout, the masked-softmax attention nanoGPT uses when
scaled_dot_product_attention is unavailable. Training follows nanoGPT's train.py:
torch.optim.AdamW with two parameter groups (weight decay on parameters with >= 2 dims
only), the warmup + cosine get_lr with lr_decay_iters = steps, loss / accum per
micro-batch, clip_grad_norm_, step, zero_grad.

Inputs (written by `TERNION_WRITE_REFERENCE_INPUTS=DIR reference_test`):
  DIR/case.json    the sizes and hyperparameters (the case in reference_test.cpp)
  DIR/weights.h5   initial weights, one f32 dataset per nanoGPT name at the root
  DIR/tokens.h5    /tokens, the training sequence

Output: golden.json with the case, the tokens, checksums of the initial weights, and for
float64 and float32: per-step loss (mean over the step's micro-batches, before the
update), grad norm (before clipping), lr, and checksums (sum, sum |x|, sum x^2) of every
parameter after the last step (c_attn.bias by its q, k, v thirds: see final_checksums).

Usage: gpt_reference.py DIR [--output tests/reference/golden.json]
"""
import argparse
import json
import math
import os

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.n_head, self.n_embd = n_head, n_embd
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        mask = torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=1e-5)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size)
        self.ln_2 = nn.LayerNorm(n_embd, eps=1e-5)
        self.mlp = MLP(n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd),
            wpe=nn.Embedding(block_size, n_embd),
            h=nn.ModuleList([Block(n_embd, n_head, block_size) for _ in range(n_layer)]),
            ln_f=nn.LayerNorm(n_embd, eps=1e-5),
        ))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied, as nanoGPT

    def forward(self, idx, targets):
        T = idx.size(1)
        pos = torch.arange(0, T, dtype=torch.long)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def get_lr(it, case):
    """nanoGPT's train.py get_lr, with lr_decay_iters = max_iters = case['steps']."""
    lr, min_lr = case["lr"], case["min_lr"]
    warmup_iters, lr_decay_iters = case["warmup_steps"], case["steps"]
    if it < warmup_iters:
        return lr * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (lr - min_lr)


def load_model(case, weights, dtype):
    model = GPT(case["vocab_size"], case["block_size"], case["n_layer"], case["n_head"], case["n_embd"])
    state = {name: torch.from_numpy(np.asarray(array)) for name, array in weights.items()}
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state, strict=True)
    return model.to(dtype)


def batch(tokens, case, step, micro):
    """Samples k*G + m*B ... + B - 1 of the data (modulo the number of samples): s -> tokens[s*T : s*T+T+1]."""
    T, G, B = case["block_size"], case["global_batch"], case["micro_batch"]
    num_samples = (len(tokens) - 1) // T
    rows = []
    for i in range(B):
        s = (step * G + micro * B + i) % num_samples
        rows.append(tokens[s * T: s * T + T + 1])
    rows = torch.tensor(np.stack(rows), dtype=torch.long)
    return rows[:, :-1].contiguous(), rows[:, 1:].contiguous()


def checksums(tensor):
    t = tensor.detach().to(torch.float64)
    return {"sum": t.sum().item(), "sum_abs": t.abs().sum().item(), "sum_sq": (t * t).sum().item()}


def final_checksums(name, tensor):
    """Checksums of a trained parameter; c_attn.bias split into its q, k, v thirds.

    The key bias gets an exactly zero gradient (it adds the same q.b_k to every score of a
    softmax row), so in float32 its update is rounding noise that Adam scales up to about
    lr per step, different in every implementation. The split lets a comparison skip it.
    """
    if name.endswith("attn.c_attn.bias"):
        return {f"{name}[{part}]": checksums(t) for part, t in zip("qkv", tensor.chunk(3))}
    return {name: checksums(tensor)}


def train(case, weights, tokens, dtype):
    model = load_model(case, weights, dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": case["weight_decay"]},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=case["lr"], betas=(case["beta1"], case["beta2"]), eps=case["eps"],
                            foreach=False)
    accum = case["global_batch"] // case["micro_batch"]
    out = {"loss": [], "grad_norm": [], "lr": []}
    for step in range(case["steps"]):
        lr = get_lr(step, case)
        for group in opt.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        for micro in range(accum):
            x, y = batch(tokens, case, step, micro)
            loss = model(x, y)
            loss_sum += loss.item()
            (loss / accum).backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), case["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        out["loss"].append(loss_sum / accum)
        out["grad_norm"].append(norm.item())
        out["lr"].append(lr)
    state = model.state_dict()
    out["final"] = {k: v for name in weights for k, v in final_checksums(name, state[name]).items()}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", help="folder with case.json, weights.h5, tokens.h5")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json"))
    args = parser.parse_args()

    torch.manual_seed(0)  # nothing random is drawn; set for good measure
    with open(os.path.join(args.inputs, "case.json")) as f:
        case = json.load(f)
    for key in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "seed", "steps", "global_batch",
                "micro_batch", "warmup_steps", "num_tokens"):
        case[key] = int(case[key])
    with h5py.File(os.path.join(args.inputs, "weights.h5"), "r") as f:
        weights = {name: f[name][()] for name in f}
        assert all(a.dtype == np.float32 for a in weights.values()), "weights must be float32"
    with h5py.File(os.path.join(args.inputs, "tokens.h5"), "r") as f:
        tokens = f["tokens"][()].astype(np.int64)
    assert len(tokens) == case["num_tokens"], (len(tokens), case["num_tokens"])

    golden = {
        "generator": "tests/reference/gpt_reference.py",
        "torch_version": torch.__version__,
        "case": case,
        "tokens": tokens.tolist(),
        "init": {name: dict(checksums(torch.from_numpy(a)), first=[float(v) for v in a.reshape(-1)[:4]])
                 for name, a in sorted(weights.items())},
        "f64": train(case, weights, tokens, torch.float64),
        "f32": train(case, weights, tokens, torch.float32),
    }
    f32, f64 = golden["f32"], golden["f64"]
    golden["f32_vs_f64"] = {
        key: max(abs(a - b) / abs(b) for a, b in zip(f32[key], f64[key])) for key in ("loss", "grad_norm")}
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump(golden, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, args.output)
    print(f"wrote {args.output}")
    for s in range(case["steps"]):
        print(f"step {s}: loss f64 {f64['loss'][s]:.10f} f32 {f32['loss'][s]:.10f}  "
              f"grad norm {f64['grad_norm'][s]:.6f}  lr {f64['lr'][s]:.6g}")
    print("max relative f32 vs f64:", golden["f32_vs_f64"])


if __name__ == "__main__":
    main()
