"""toy_torch.py — PyTorch 1.13 side of bench/toy_vs_torch.sh and bench/toy_sample_vs_torch.sh:
the DisCo-Diff toy model of models/disco/toy_model.c (or its EDM baseline) with the same shapes,
the same training step and the same sampling.

The model: EDM preconditioning with sigma_data 0.5 (c_skip, c_out, c_in, c_noise = ln(sigma)/4
per example), the denoiser MLP (c_in x and 16 sin/cos Fourier features of c_noise -> 4 linear
layers of width 256 with SiLU), for DisCo-Diff the encoder MLP (2 -> 128 -> 128 -> m*k) and the
latents' embedding (a linear map of the one-hot codes, no bias) added after the first layer, or
a learned null embedding in its place; kaiming-normal weights and zero biases.

Training (default): the 8-Gaussian data (8000 points), sigma ~ lognormal(-1.2, 1.2),
Gumbel-softmax straight-through (tau 1), the null embedding with probability 0.1; Adam (no
weight decay), global-norm clipping at 1, linear warmup then cosine to 0.1 of the peak. Prints
the steps/s over all STEPS steps, timed from the start of the first (the window disco's
progress display uses).

Sampling (--sample): what `disco sample toy` computes (models/disco/sample.c, edm.c), with
randomly initialised weights (the speed does not depend on them): per denoiser call the whole
denoiser as disco's sampling graph has it (sigma as a per-point [n,1] column, the one-hot codes'
embedding and the where() between it and the null embedding with no point dropped: guidance 0,
plain conditional sampling), under torch.no_grad(); Heun's method on the EDM schedule (sigma_min
0.002, sigma_max 80, rho 7, t_N = 0) with the 2nd-order correction on every step but the last,
2 STEPS - 1 denoiser calls. The codes are drawn uniformly at random, untimed: PyTorch's side
times the ODE only (the initial noise and the integration), to be compared with the ODE time
`disco sample toy` prints (its prior, a tiny transformer over one latent, is timed apart).
Prints the seconds of the ODE.

usage: /usr/bin/python3 bench/toy_torch.py --model disco|edm [--steps N] [--batch B]
       [--threads T] [--seed S]
       /usr/bin/python3 bench/toy_torch.py --sample --model disco|edm [--n N] [--heun-steps S]
       [--threads T] [--seed S]
Run it as the *_vs_torch.sh scripts do (bench/torch_env.sh): OPENBLAS_NUM_THREADS=1,
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset."""
import argparse
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# models/disco/toy_model.c, edm.c and disco.h defaults
SIGMA_DATA, P_MEAN, P_STD = 0.5, -1.2, 1.2
SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0
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

    def denoised(self, x, sigma, emb):
        """D(x; sigma) for x [B,2], sigma [B,1] and the latents' embedding emb [B,W] (None: baseline)"""
        v = sigma * sigma + SIGMA_DATA ** 2
        c_in = v.rsqrt()
        c_skip, c_out = SIGMA_DATA ** 2 / v, sigma * c_in * SIGMA_DATA
        arg = (torch.log(sigma) * 0.25) * self.freq
        h = self.l0(torch.cat([c_in * x, torch.sin(arg), torch.cos(arg)], 1))
        if emb is not None:
            h = h + emb
        h = F.silu(h)
        h = F.silu(self.l1(h))
        h = F.silu(self.l2(h))
        return c_skip * x + c_out * self.l3(h)

    def loss(self, y):
        b = y.shape[0]
        sigma = torch.exp(torch.randn(b, 1) * P_STD + P_MEAN)
        x = y + sigma * torch.randn_like(y)
        emb = None
        if self.disco:
            logits = self.enc(y).view(b, LATENTS, CODES)
            soft = F.softmax((logits - torch.log(-torch.log(torch.rand_like(logits)))) / TAU, -1)
            hard = F.one_hot(soft.argmax(-1), CODES).to(soft.dtype)
            z = hard + soft - soft.detach()
            drop = torch.rand(b, 1) < NULL_PROB
            emb = torch.where(drop, self.null, self.proj(z.view(b, LATENTS * CODES)))
        d = self.denoised(x, sigma, emb)
        weight = (sigma * sigma + SIGMA_DATA ** 2) / (sigma * SIGMA_DATA) ** 2
        return (weight * ((d - y) ** 2).sum(1, keepdim=True)).mean()

    def denoise(self, x, sigma, codes, drop):
        """one call of disco's sampling graph: sigma a float, codes [B,m] int64, drop [B,1] bool"""
        b = x.shape[0]
        emb = None
        if self.disco:
            z = F.one_hot(codes, CODES).to(x.dtype).view(b, LATENTS * CODES)
            emb = torch.where(drop, self.null, self.proj(z))
        return self.denoised(x, torch.full((b, 1), sigma), emb)


def schedule(steps):
    """disco's dc_edm_schedule: t_0 .. t_{steps-1} from sigma_max down to sigma_min, t_steps = 0"""
    a, b = SIGMA_MAX ** (1 / RHO), SIGMA_MIN ** (1 / RHO)
    t = [SIGMA_MAX if steps == 1 else (a + i / (steps - 1) * (b - a)) ** RHO for i in range(steps)]
    return t + [0.0]


def sample(model, n, steps):
    """the EDM Heun sampler of disco's dc_edm_sample over n points; returns the ODE's seconds"""
    codes = torch.randint(0, CODES, (n, LATENTS))
    drop = torch.zeros(n, 1, dtype=torch.bool)
    t = schedule(steps)
    with torch.no_grad():
        t0 = time.perf_counter()
        x = torch.randn(n, 2) * SIGMA_MAX
        for i in range(steps):
            h = t[i + 1] - t[i]
            d = (x - model.denoise(x, t[i], codes, drop)) / t[i]
            x_next = x + h * d
            if t[i + 1] != 0.0:
                d2 = (x_next - model.denoise(x_next, t[i + 1], codes, drop)) / t[i + 1]
                x_next = x + h * 0.5 * (d + d2)
            x = x_next
        dt = time.perf_counter() - t0
    if not torch.isfinite(x).all():
        sys.exit("toy_torch.py: the samples are not finite")
    return dt


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
    ap.add_argument("--sample", action="store_true", help="time sampling instead of training")
    ap.add_argument("--n", type=int, default=20000, help="points to sample")
    ap.add_argument("--heun-steps", type=int, default=50)
    a = ap.parse_args()
    if a.steps < 2 or not 1 <= a.batch <= TRAIN_N or a.threads < 1 or a.n < 1 or a.heun_steps < 1:
        sys.exit("toy_torch.py: bad --steps, --batch, --threads, --n or --heun-steps")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.sample:
        dt = sample(Toy(a.model == "disco"), a.n, a.heun_steps)
        print(f"torch sample: {a.n} points, {a.heun_steps} steps, {a.threads} threads, {dt:.3f} s ODE")
        return
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
