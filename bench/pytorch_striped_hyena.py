"""The StripedHyena 2-style preset written directly in PyTorch: the baseline that bench/train_speed
is compared with (eager and torch.compile), on the same GPU in the same call.

Same network as starsynth's preset (genome/presets.cpp, evaluator/model.cpp): byte vocabulary,
tied embedding, pre-norm RMSNorm around every LIV, token mixers Hyena-SE, Hyena-MR, Hyena-LI and
RoPE attention in turn, each followed by SwiGLU (hidden 8/3·width rounded up to 64). A Hyena
mixer projects q, k, v, runs each through a 3-tap causal depthwise convolution, and returns
out(q ⊙ (h ∗ (k ⊙ v) + D ⊙ k ⊙ v)): Hyena-SE with 7-tap filters shared by groups of 16 channels
(no D), Hyena-MR with 128 such taps times a per-group exponential decay, Hyena-LI with a modal
filter Σ_n R[c, n]·λ[c, n]^t (16 poles per channel) applied by FFT. No biases. AdamW, bf16 autocast.

    python3 bench/pytorch_striped_hyena.py --mode compile --width 768 --livs 24 --batch 16 --seq 2048

It prints the parameter count, which must equal train_speed's for the same preset and size.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from pytorch_transformer import Attention, Backbone, SwiGLU, arguments, benchmark


def causal_depthwise(x, weight):
    """x [B, L, C], weight [C, 1, K] → causal depthwise convolution, [B, L, C]."""
    length, taps = x.shape[1], weight.shape[-1]
    y = F.conv1d(x.transpose(1, 2), weight.to(x.dtype), padding=taps - 1, groups=weight.shape[0])
    return y[..., :length].transpose(1, 2)


def fft_causal(z, h):
    """Causal convolution of z [B, L, C] with per-channel filters h [C, L], by FFT in float32."""
    length = z.shape[1]
    n = 2 * length
    zf = torch.fft.rfft(z.transpose(1, 2).float(), n=n)
    hf = torch.fft.rfft(h[:, :length].float(), n=n)
    return torch.fft.irfft(zf * hf, n=n)[..., :length].transpose(1, 2).to(z.dtype)


class Hyena(nn.Module):
    def __init__(self, d, kind, short=3, group=16, modes=16):
        super().__init__()
        self.kind = kind
        self.q, self.k, self.v = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.q_conv, self.k_conv, self.v_conv = (nn.Parameter(torch.randn(d, 1, short) / short) for _ in range(3))
        self.out = nn.Linear(d, d, bias=False)
        self.group = group
        if kind in ("SE", "MR"):
            taps = 7 if kind == "SE" else 128
            self.taps = nn.Parameter(torch.randn(d // group, 1, taps) / taps)
        else:
            self.log_poles = nn.Parameter(torch.randn(d, modes) * 0.5 - 2.0)
            self.residues = nn.Parameter(torch.randn(d, modes) / modes)
        if kind in ("MR", "LI"):
            self.D = nn.Parameter(torch.ones(d))

    def filter(self, length):
        if self.kind == "LI":
            t = torch.arange(length, device=self.residues.device, dtype=torch.float32)
            rate = self.log_poles.exp()
            return (self.residues[..., None] * torch.exp(-rate[..., None] * t)).sum(1)  # [C, L]
        taps = self.taps
        if self.kind == "MR":
            groups, n = taps.shape[0], taps.shape[-1]
            t = torch.linspace(0.0, 1.0, n, device=taps.device)
            r = 10.0 ** torch.linspace(-1.0, 2.0, groups, device=taps.device)
            taps = taps * torch.exp(-r[:, None] * t[None, :])[:, None, :]
        return taps.repeat_interleave(self.group, 0)  # [C, 1, K]

    def forward(self, x):
        q = causal_depthwise(self.q(x), self.q_conv)
        k = causal_depthwise(self.k(x), self.k_conv)
        v = causal_depthwise(self.v(x), self.v_conv)
        z = k * v
        if self.kind == "LI":
            y = fft_causal(z, self.filter(x.shape[1]))
        else:
            y = causal_depthwise(z, self.filter(x.shape[1]).flip(-1))  # tap j at lag j, as in starsynth
        if self.kind != "SE":
            y = y + self.D.to(z.dtype) * z
        return self.out(q * y)


class StripedHyena2(Backbone):
    def __init__(self, d, livs, vocab=256):
        head_dim = 64 if d >= 256 else max(1, d // 4)
        kinds = ["SE", "MR", "LI", "SA"]
        mixers = []
        for i in range(livs):
            if i % 2:
                mixers.append(SwiGLU(d))
            else:
                kind = kinds[(i // 2) % len(kinds)]
                mixers.append(Attention(d, head_dim) if kind == "SA" else Hyena(d, kind))
        super().__init__(d, mixers, vocab)


if __name__ == "__main__":
    benchmark("striped-hyena2", StripedHyena2, arguments())
