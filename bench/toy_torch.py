"""toy_torch.py — PyTorch 1.13 side of bench/toy_vs_torch.sh: trains the DisCo-Diff toy model of
models/disco/toy_model.c (or its EDM baseline) with the same shapes and the same training step:
the 8-Gaussian data (8000 points), sigma ~ lognormal(-1.2, 1.2), EDM preconditioning with
sigma_data 0.5, the denoiser MLP (c_in x and 16 sin/cos Fourier features of c_noise -> 4
linear layers of width 256 with SiLU), for DisCo-Diff the encoder MLP (2 -> 128 -> 128 -> m*k),
Gumbel-softmax straight-through (tau 1), the latents' embedding (no bias) added after the
first layer and replaced by a learned null embedding with probability 0.1; kaiming-normal
weights and zero biases; Adam (no weight decay), global-norm clipping at 1, linear warmup then
cosine to 0.1 of the peak. Prints the steps/s over all STEPS steps, timed from the start of
the first (the window disco's progress display uses).

usage: /usr/bin/python3 bench/toy_torch.py --model disco|edm [--steps N] [--batch B]
       [--threads T] [--seed S]
Run it as toy_vs_torch.sh does: OPENBLAS_NUM_THREADS=1, OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset."""
import argparse
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# models/disco/toy_model.c and edm.c defaults
SIGMA_DATA, P_MEAN, P_STD = 0.5, -1.2, 1.2
WIDTH, ENC_WIDTH, FREQS, FREQ_MAX = 256, 128, 16, 32.0
LATENTS, CODES, TAU, NULL_PROB = 1, 8, 1.0, 0.1
LR, WARMUP, MIN_LR_RATIO, CLIP = 1e-3, 100, 0.1, 1.0
TRAIN_N, MODES, RADIUS, STD = 8000, 8, 3.0, 0.2


def linear(i, o, bias=True):
    m = nn.Linear(i, o, bias=bias)
    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    if bias:
        nn.init.zeros_(m.bias)
    return m


class Toy(nn.Module):
    def __init__(self, disco):
        super().__init__()
        self.disco = disco
        if disco:
            self.enc = nn.Sequential(linear(2, ENC_WIDTH), nn.SiLU(), linear(ENC_WIDTH, ENC_WIDTH), nn.SiLU(),
                                     linear(ENC_WIDTH, LATENTS * CODES))
            self.proj = linear(LATENTS * CODES, WIDTH, bias=False)
            self.null = nn.Parameter(torch.randn(1, WIDTH))
        self.l0 = linear(2 + 2 * FREQS, WIDTH)
        self.l1, self.l2, self.l3 = linear(WIDTH, WIDTH), linear(WIDTH, WIDTH), linear(WIDTH, 2)
        self.register_buffer("freq", torch.exp(torch.arange(FREQS) * (math.log(FREQ_MAX) / (FREQS - 1))))

    def loss(self, y):
        b = y.shape[0]
        sigma = torch.exp(torch.randn(b, 1) * P_STD + P_MEAN)
        x = y + sigma * torch.randn_like(y)
        v = sigma * sigma + SIGMA_DATA ** 2
        c_skip, c_out, c_in = SIGMA_DATA ** 2 / v, sigma * SIGMA_DATA / v.sqrt(), v.rsqrt()
        arg = (torch.log(sigma) / 4) * self.freq
        h = self.l0(torch.cat([c_in * x, torch.sin(arg), torch.cos(arg)], 1))
        if self.disco:
            logits = self.enc(y).view(b, LATENTS, CODES)
            soft = F.softmax((logits - torch.log(-torch.log(torch.rand_like(logits)))) / TAU, -1)
            hard = F.one_hot(soft.argmax(-1), CODES).to(soft.dtype)
            z = hard + soft - soft.detach()
            emb = self.proj(z.view(b, LATENTS * CODES))
            drop = torch.rand(b, 1) < NULL_PROB
            h = h + torch.where(drop, self.null, emb)
        h = F.silu(h)
        h = F.silu(self.l1(h))
        h = F.silu(self.l2(h))
        d = c_skip * x + c_out * self.l3(h)
        weight = v / (sigma * SIGMA_DATA) ** 2
        return (weight * ((d - y) ** 2).sum(1, keepdim=True)).mean()


def lr_at(step, steps):
    """disco's dc_lr_at"""
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    t = (step - WARMUP) / max(1, steps - WARMUP)
    return LR * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * (1 + math.cos(math.pi * t)) / 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["disco", "edm"], required=True)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.steps < 2 or not 1 <= a.batch <= TRAIN_N or a.threads < 1:
        sys.exit("toy_torch.py: bad --steps, --batch or --threads")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    mode = torch.randint(0, MODES, (TRAIN_N,))
    ang = mode.to(torch.float32) * (math.pi / 4)
    data = torch.stack([torch.cos(ang), torch.sin(ang)], 1) * RADIUS + STD * torch.randn(TRAIN_N, 2)
    model = Toy(a.model == "disco")
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8)
    per_epoch = TRAIN_N // a.batch
    perm = torch.randperm(TRAIN_N)
    t0 = time.perf_counter()
    for step in range(a.steps):
        p = step % per_epoch
        if p == 0 and step > 0:
            perm = torch.randperm(TRAIN_N)
        y = data[perm[p * a.batch:(p + 1) * a.batch]]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps)
        loss = model.loss(y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
    dt = time.perf_counter() - t0
    print(f"torch {a.model}: {a.steps} steps of batch {a.batch}, {a.threads} threads, loss {loss.item():.4f}, "
          f"{a.steps / dt:.1f} steps/s")


if __name__ == "__main__":
    main()
