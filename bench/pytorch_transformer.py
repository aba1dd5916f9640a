"""The Transformer++ preset written directly in PyTorch: the baseline that bench/train_speed is
compared with, in eager mode and under torch.compile, on the same GPU in the same call.

Same network as starsynth's preset: byte vocabulary, tied embedding, pre-norm RMSNorm around every
LIV, RoPE multi-head attention (head size 64, or width/4 below width 256) through SDPA, SwiGLU with
hidden size 8/3·width rounded up to 64, AdamW, bf16 autocast.

    python3 bench/pytorch_transformer.py --mode compile --width 768 --livs 24 --batch 16 --seq 2048

Its arguments() and benchmark() serve bench/pytorch_striped_hyena.py too; `--device cpu` runs
either without a GPU (fp32, for checking, not for timing).
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


def rope(x, theta=10000.0):
    _, _, length, hd = x.shape
    half = hd // 2
    inv = theta ** (-torch.arange(0, half, device=x.device, dtype=torch.float32) * 2.0 / hd)
    angle = torch.arange(length, device=x.device, dtype=torch.float32)[:, None] * inv[None, :]
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:2 * half]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class Attention(nn.Module):
    def __init__(self, d, head_dim):
        super().__init__()
        self.heads, self.hd = d // head_dim, head_dim
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.o = nn.Linear(d, d, bias=False)

    def forward(self, x):
        b, length, d = x.shape
        split = lambda t: t.view(b, length, self.heads, self.hd).transpose(1, 2)
        q, k, v = rope(split(self.q(x))), rope(split(self.k(x))), split(self.v(x))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o(y.transpose(1, 2).reshape(b, length, d))


class SwiGLU(nn.Module):
    def __init__(self, d):
        super().__init__()
        hidden = (math.ceil(8 * d / 3 - 1e-6) + 63) // 64 * 64
        self.gate = nn.Linear(d, hidden, bias=False)
        self.up = nn.Linear(d, hidden, bias=False)
        self.down = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Backbone(nn.Module):
    """Byte embedding, a pre-norm residual block per mixer, final norm, tied head: the stacking
    every preset shares (evaluator/model.cpp)."""

    def __init__(self, d, mixers, vocab):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.norms = nn.ModuleList(RMSNorm(d) for _ in mixers)
        self.mixers = nn.ModuleList(mixers)
        self.final = RMSNorm(d)

    def forward(self, tokens):
        x = self.emb(tokens)
        for norm, mixer in zip(self.norms, self.mixers):
            x = x + mixer(norm(x))
        return F.linear(self.final(x), self.emb.weight)


class TransformerPP(Backbone):
    def __init__(self, d, livs, vocab=256):
        head_dim = 64 if d >= 256 else max(1, d // 4)
        super().__init__(d, [Attention(d, head_dim) if i % 2 == 0 else SwiGLU(d) for i in range(livs)], vocab)


def arguments():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["eager", "compile"], default="eager")
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--livs", type=int, default=24)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda")
    return p.parse_args()


def benchmark(name, make_model, a):
    """Trains make_model(width, livs) on random bytes as bench/train_speed does and prints the
    median tokens/s over the repeats (bf16 autocast on CUDA)."""
    torch.manual_seed(0)
    device = torch.device(a.device)
    model = make_model(a.width, a.livs).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    tokens = torch.randint(256, (a.batch, a.seq + 1), device=device)
    x, y = tokens[:, :-1], tokens[:, 1:]
    forward = torch.compile(model) if a.mode == "compile" else model
    cuda = device.type == "cuda"

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(forward(x).float().reshape(-1, 256), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    sync()
    rates = []
    for r in range(a.repeats):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        sync()
        s = time.perf_counter() - t0
        rates.append(a.batch * a.seq * a.steps / s)
        print(f"repeat {r}: {rates[-1]:.0f} tokens/s, {1e3 * s / a.steps:.2f} ms/step")
    median = statistics.median(rates)
    params = sum(p.numel() for p in model.parameters())
    print(f"pytorch-{a.mode} {name} width {a.width}, {a.livs} LIVs, batch {a.batch} × {a.seq}: median {median:.0f} "
          f"tokens/s, {1e3 * a.batch * a.seq / median:.2f} ms/step ({params} parameters)")
    print(f"csv,pytorch-{a.mode},{name},{a.width},{a.livs},{a.batch},{a.seq},{median:.0f}")


if __name__ == "__main__":
    benchmark("transformer++", TransformerPP, arguments())
