"""images_torch.py — the PyTorch 1.13 twin of disco's image model (models/disco/unet.c, vit.c,
img_layers.c, images.c, edm.c): the same U-Net, ViT encoder, latent tokens, Gumbel-softmax
straight-through, latent dropout and EDM loss, module by module, with every param named as
disco names it.

Layouts: images are NCHW here (NHWC in disco); a disco linear weight NAME.w is [in,out] (here
[out,in], transposed on load), a conv weight HWIO (here OIHW). Group norm groups consecutive
channels (as disco's over the last axis), eps 1e-5 as layer norm's; GELU is the tanh form
(ir/ops.def); attention scales the scores by 1/sqrt(head width); the key projection has no
bias; the straight-through latents are one-hot forward and softmax((logits + gumbel) / tau)
backward.

Modes:
  --parity DIR       DIR written by build/bench/images_twin: loads its params and batch, computes
                     the loss and every param's gradient with autograd, and compares them with
                     disco's: per param the norm-wise relative error ||g_torch - g_disco|| /
                     ||g_disco||, and the loss's relative difference. Exits 1 when any exceeds
                     --tol (default 1e-4) or the loss --loss-tol (default 1e-5). --double
                     computes in float64 (disco's float32 against a reference). The two agree
                     to about 1e-5 in float32; exact GELU in place of the tanh form would
                     already miss 1e-4 (8e-4 in the ViT).
  --train-bench      training throughput: AdamW (disco's defaults: warmup, cosine, clipping at
                     global norm 1, EMA 0.999), batch 128, the default config, draws as disco's
                     training graph (ln sigma ~ N(-1.2, 1.2^2), noise, Gumbel noise, dropout 0.1)
                     on Fashion-MNIST. Prints the images/s of the whole run (model build and
                     every step, as disco's `train fmnist-disco` reports its stage 1) and of
                     the steps after --warmup.
  --sample-bench     sampling throughput: the denoiser (latent tokens from codes, U-Net, EDM
                     preconditioning) under no_grad at batch 250, --calls evaluations after
                     --warmup; prints denoiser images/s (images x evaluations per second).
  --layout nchw|channels_last, --threads (2), --baseline (the EDM U-Net without latents).

usage: /usr/bin/python3 bench/images_torch.py --parity DIR [--tol X] [--double]
       /usr/bin/python3 bench/images_torch.py --train-bench|--sample-bench --layout L [...]
Run the benchmarks as bench/images_vs_torch.sh does (bench/torch_env.sh: OPENBLAS_NUM_THREADS=1,
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset)."""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# disco's constants: models/disco/images.h, unet.c, disco.h, images.c (dc_img_setup_defaults)
SIDE, CLASSES, GN_GROUPS = 28, 10, 8
NOISE_FREQS, NOISE_FREQ_MAX = 32, 32.0
P_MEAN, P_STD = -1.2, 1.2
LR, WARMUP_STEPS, MIN_LR_RATIO, B1, B2, EPS, CLIP, EMA = 1e-3, 200, 0.1, 0.9, 0.999, 1e-8, 1.0, 0.999
DEFAULTS = dict(baseline=False, m=8, k=16, latent_groups=1, tau=1.0, sigma_data=0.5, null_prob=0.1, ch=16,
                emb=128, heads=4, lat_d=64, lat_layers=2, vit_d=64, vit_layers=2, vit_patch=4)


class Registry:
    """disco name -> (torch param, kind): kind "linear" ([in,out] in disco), "conv" (HWIO in
    disco) or "plain" (the same layout)"""

    def __init__(self):
        self.params = {}

    def add(self, name, p, kind):
        assert name not in self.params, name
        self.params[name] = (p, kind)
        return p

    # per kind, the torch layout's axes as axes of disco's
    AXES = {"linear": (1, 0), "conv": (3, 2, 0, 1)}

    @staticmethod
    def to_torch(kind, a):
        """a disco value (numpy) in the torch layout"""
        return a.transpose(Registry.AXES[kind]) if kind in Registry.AXES else a

    @staticmethod
    def to_disco(kind, t):
        """a torch tensor in disco's layout"""
        return t.permute(*np.argsort(Registry.AXES[kind]).tolist()) if kind in Registry.AXES else t


def param(reg, name, shape, kind, init):
    """a param of shape (torch layout) named as disco names it; init "zeros", "ones",
    "kaiming" (normal, std sqrt(2/fan_in)) or ("normal", std)"""
    p = nn.Parameter(torch.empty(shape))
    with torch.no_grad():
        if init == "zeros":
            p.zero_()
        elif init == "ones":
            p.fill_(1.0)
        elif init == "kaiming":
            p.normal_(0.0, math.sqrt(2.0 / (p[0].numel())))
        else:
            p.normal_(0.0, init[1])
    return reg.add(name, p, kind)


class Linear(nn.Module):
    """dc_linear: NAME.w [in,out] (kaiming, or zeros), NAME.b [out] zeros"""

    def __init__(self, reg, name, i, o, bias=True, init="kaiming"):
        super().__init__()
        self.w = param(reg, name + ".w", (o, i), "linear", init)
        self.b = param(reg, name + ".b", (o,), "plain", "zeros") if bias else None

    def forward(self, x):
        return F.linear(x, self.w, self.b)


class Conv(nn.Module):
    """dc_conv: NAME.w [k,k,in,out] kaiming, NAME.b zeros, "same" padding"""

    def __init__(self, reg, name, i, o, kernel=3):
        super().__init__()
        self.w = param(reg, name + ".w", (o, i, kernel, kernel), "conv", "kaiming")
        self.b = param(reg, name + ".b", (o,), "plain", "zeros")
        self.pad = kernel // 2

    def forward(self, x):
        return F.conv2d(x, self.w, self.b, padding=self.pad)


class Norm(nn.Module):
    """dc_group_norm_m (groups > 0: x [B,C,...]) or dc_layer_norm_m (x [...,C]): NAME.scale
    ones, NAME.bias zeros, eps 1e-5"""

    def __init__(self, reg, name, c, groups=0):
        super().__init__()
        self.scale = param(reg, name + ".scale", (c,), "plain", "ones")
        self.bias = param(reg, name + ".bias", (c,), "plain", "zeros")
        self.groups = groups

    def forward(self, x):
        if self.groups:
            return F.group_norm(x, self.groups, self.scale, self.bias, 1e-5)
        return F.layer_norm(x, x.shape[-1:], self.scale, self.bias, 1e-5)


class Attention(nn.Module):
    """dc_img_attention: x [B,N,C] attends to ctx [B,M,D]; NAME.q, NAME.k (no bias), NAME.v,
    NAME.o (init o_init)"""

    def __init__(self, reg, name, c, d, heads, o_init):
        super().__init__()
        self.q = Linear(reg, name + ".q", c, c)
        self.k = Linear(reg, name + ".k", d, c, bias=False)
        self.v = Linear(reg, name + ".v", d, c)
        self.o = Linear(reg, name + ".o", c, c, init=o_init)
        self.heads = heads

    def forward(self, x, ctx):
        b, n, c = x.shape
        m, h = ctx.shape[1], self.heads
        dh = c // h
        q = self.q(x).reshape(b, n, h, dh).transpose(1, 2)
        k = self.k(ctx).reshape(b, m, h, dh).transpose(1, 2)
        v = self.v(ctx).reshape(b, m, h, dh).transpose(1, 2)
        p = torch.softmax((q @ k.transpose(-1, -2)) * np.float32(1.0 / math.sqrt(dh)), -1)
        return self.o((p @ v).transpose(1, 2).reshape(b, n, c))


class Transformer(nn.Module):
    """dc_img_transformer: pre-norm layers blockL.{ln1,attn,ln2,mlp.up,mlp.down}, then ln_f"""

    def __init__(self, reg, prefix, d, heads, layers):
        super().__init__()
        self.blocks = nn.ModuleList()
        for l in range(layers):
            p = f"{prefix}.block{l}"
            self.blocks.append(nn.ModuleDict(dict(
                ln1=Norm(reg, p + ".ln1", d), attn=Attention(reg, p + ".attn", d, d, heads, "kaiming"),
                ln2=Norm(reg, p + ".ln2", d), up=Linear(reg, p + ".mlp.up", d, 4 * d),
                down=Linear(reg, p + ".mlp.down", 4 * d, d))))
        self.ln_f = Norm(reg, prefix + ".ln_f", d)

    def forward(self, h):
        for blk in self.blocks:
            n = blk["ln1"](h)
            h = h + blk["attn"](n, n)
            h = h + blk["down"](F.gelu(blk["up"](blk["ln2"](h)), approximate="tanh"))
        return self.ln_f(h)


class Vit(nn.Module):
    """dc_img_vit: clean images y [B,1,28,28] -> logits [B,m,k]"""

    def __init__(self, reg, c):
        super().__init__()
        self.p, self.m = c["vit_patch"], c["m"]
        n, d = SIDE // self.p, c["vit_d"]
        self.pos = param(reg, "vit.pos", (n * n, d), "plain", ("normal", 0.1))
        self.patch = Linear(reg, "vit.patch", self.p * self.p, d)
        self.latents = param(reg, "vit.latents", (self.m, d), "plain", ("normal", 0.1))
        self.tr = Transformer(reg, "vit", d, c["heads"], c["vit_layers"])
        self.head = Linear(reg, "vit.head", d, c["k"])

    def forward(self, y):
        b, p = y.shape[0], self.p
        n = SIDE // p
        t = y.reshape(b, n, p, n, p).permute(0, 1, 3, 2, 4).reshape(b, n * n, p * p)
        t = self.patch(t) + self.pos
        h = torch.cat([self.latents.expand(b, -1, -1), t], 1)
        return self.head(self.tr(h)[:, :self.m])


class LatentTokens(nn.Module):
    """dc_img_latent_tokens: z [B,m,k+1] -> [B,m,lat_d]"""

    def __init__(self, reg, c):
        super().__init__()
        self.embed = param(reg, "lat.embed", (c["k"] + 1, c["lat_d"]), "plain", ("normal", 0.1))
        self.pos = param(reg, "lat.pos", (c["m"], c["lat_d"]), "plain", ("normal", 0.1))
        self.tr = Transformer(reg, "lat", c["lat_d"], c["heads"], c["lat_layers"])

    def forward(self, z):
        return self.tr(z @ self.embed + self.pos)


class Level(nn.Module):
    """unet.c's level NAME: the res block (NAME.res.*), then with attn the self-attention
    (NAME.attn_gn, NAME.attn) and, with latents, the cross-attention (NAME.cross_gn, NAME.cross)"""

    def __init__(self, reg, name, i, o, e, attn, c):
        super().__init__()
        r = name + ".res"
        self.gn1, self.conv1 = Norm(reg, r + ".gn1", i, GN_GROUPS), Conv(reg, r + ".conv1", i, o)
        self.emb = Linear(reg, r + ".emb", e, o)
        self.gn2, self.conv2 = Norm(reg, r + ".gn2", o, GN_GROUPS), Conv(reg, r + ".conv2", o, o)
        self.skip = Conv(reg, r + ".skip", i, o, kernel=1) if i != o else None
        self.attn = self.cross = None
        if attn:
            self.attn_gn = Norm(reg, name + ".attn_gn", o, GN_GROUPS)
            self.attn = Attention(reg, name + ".attn", o, o, c["heads"], "zeros")
            if not c["baseline"]:
                self.cross_gn = Norm(reg, name + ".cross_gn", o, GN_GROUPS)
                self.cross = Attention(reg, name + ".cross", o, c["lat_d"], c["heads"], "zeros")

    def forward(self, h, emb, lat):
        y = self.conv1(F.silu(self.gn1(h)))
        y = y + self.emb(emb)[:, :, None, None]
        y = self.conv2(F.silu(self.gn2(y)))
        h = (h if self.skip is None else self.skip(h)) + y
        if self.attn is None:
            return h
        b, ch, s, _ = h.shape
        x = h.reshape(b, ch, s * s).transpose(1, 2)                       # [B,SS,C]
        n = self.attn_gn(h).reshape(b, ch, s * s).transpose(1, 2)
        x = x + self.attn(n, n)
        if self.cross is not None:
            n = self.cross_gn(x.transpose(1, 2)).transpose(1, 2)
            x = x + self.cross(n, lat)
        return x.transpose(1, 2).reshape(b, ch, s, s)


class Unet(nn.Module):
    """dc_img_unet: x_in [B,1,28,28], c_noise [B,1], labels [B], lat [B,m,lat_d] or None"""

    def __init__(self, reg, c):
        super().__init__()
        ch, e = c["ch"], c["emb"]
        ch2 = 2 * ch
        self.c = c
        self.emb0 = Linear(reg, "unet.emb0", 2 * NOISE_FREQS, e)
        self.emb1 = Linear(reg, "unet.emb1", e, e)
        self.cls = param(reg, "unet.class", (CLASSES, e), "plain", ("normal", 1.0))
        self.inp = Conv(reg, "unet.in", 1, ch)
        L = lambda name, i, o, attn: Level(reg, "unet." + name, i, o, e, attn, c)  # noqa: E731
        self.down0, self.down1, self.down2 = L("down0", ch, ch, False), L("down1", ch, ch2, False), L("down2", ch2, ch2, True)
        self.mid0, self.mid1 = L("mid0", ch2, ch2, True), L("mid1", ch2, ch2, False)
        self.up2, self.up1, self.up0 = L("up2", 2 * ch2, ch2, True), L("up1", ch + ch2, ch2, True), L("up0", 2 * ch, ch, False)
        self.up1_proj, self.up0_proj = Conv(reg, "unet.up1_proj", ch2, ch, 1), Conv(reg, "unet.up0_proj", ch2, ch, 1)
        self.out_gn, self.out = Norm(reg, "unet.out_gn", ch, GN_GROUPS), Conv(reg, "unet.out", ch, 1)
        j = torch.arange(NOISE_FREQS, dtype=torch.float32)
        self.register_buffer("freq", torch.exp(j * np.float32(math.log(NOISE_FREQ_MAX) / (NOISE_FREQS - 1))))

    def forward(self, x_in, c_noise, labels, lat):
        arg = c_noise * self.freq.to(c_noise.dtype)                        # [B,F]
        e = F.silu(self.emb0(torch.cat([torch.sin(arg), torch.cos(arg)], 1)))
        emb = F.silu(self.emb1(e) + self.cls[labels])
        lat7 = lat14 = lat
        if lat is not None and self.c["latent_groups"] == 2:
            half = self.c["m"] // 2
            lat7, lat14 = lat[:, :half], lat[:, half:]
        h = self.inp(x_in)
        s0 = h = self.down0(h, emb, None)
        h = F.avg_pool2d(h, 2)
        s1 = h = self.down1(h, emb, None)
        h = F.avg_pool2d(h, 2)
        s2 = h = self.down2(h, emb, lat7)
        h = self.mid0(h, emb, lat7)
        h = self.mid1(h, emb, None)
        h = self.up2(torch.cat([h, s2], 1), emb, lat7)
        h = self.up1(torch.cat([F.interpolate(self.up1_proj(h), scale_factor=2, mode="nearest"), s1], 1), emb, lat14)
        h = self.up0(torch.cat([F.interpolate(self.up0_proj(h), scale_factor=2, mode="nearest"), s0], 1), emb, None)
        return self.out(F.silu(self.out_gn(h)))


class Model(nn.Module):
    """the U-Net and, with latents, the ViT encoder and the latent tokens; reg maps disco's
    param names to these params"""

    def __init__(self, c):
        super().__init__()
        self.c, self.reg = c, Registry()
        self.unet = Unet(self.reg, c)
        if not c["baseline"]:
            self.vit = Vit(self.reg, c)
            self.lat = LatentTokens(self.reg, c)

    def denoise(self, x, sigma, labels, lat):
        """dc_edm_denoiser: x [B,1,28,28], sigma [B,1] -> D(x; sigma)"""
        sd = self.c["sigma_data"]
        v = sigma * sigma + sd * sd
        c_in = torch.rsqrt(v)
        c_skip, c_out, c_noise = (sd * sd) / v, sigma * c_in * sd, torch.log(sigma) * 0.25
        f = self.unet(c_in[:, :, None, None] * x, c_noise, labels, lat)
        return c_skip[:, :, None, None] * x + c_out[:, :, None, None] * f

    def tokens_of_codes(self, codes):
        """codes [B,m] (k = the null code) -> latent tokens, as disco's denoising graph"""
        return self.lat(F.one_hot(codes, self.c["k"] + 1).to(self.lat.embed.dtype))

    def loss(self, x01, labels, sigma, noise, gumbel, drop):
        """images.c's batch_loss: pixels x01 [B,1,28,28] in [0,1] under the batch's draws"""
        c = self.c
        y = x01 * 2.0 - 1.0
        x = y + sigma[:, :, None, None] * noise
        lat = None
        if not c["baseline"]:
            soft = torch.softmax((self.vit(y) + gumbel) * np.float32(1.0 / c["tau"]), -1)       # [B,m,k]
            hard = F.one_hot(soft.argmax(-1), c["k"]).to(soft.dtype)
            z = hard + (soft - soft.detach())                              # one-hot forward, soft backward
            z1 = torch.cat([z * (1.0 - drop), drop.expand(-1, c["m"], 1)], 2)
            lat = self.lat(z1)
        d = self.denoise(x, sigma, labels, lat)
        sd2 = c["sigma_data"] ** 2
        per = ((d - y) ** 2).sum((1, 2, 3))
        s2 = sigma.reshape(-1) ** 2
        return ((s2 + sd2) / (s2 * sd2) * per).mean()


# ---- parity ---------------------------------------------------------------------------------

def parity(a):
    man = json.load(open(os.path.join(a.parity, "manifest.json")))
    c = dict(DEFAULTS)
    c.update({k: v for k, v in man["config"].items() if k in c})
    if man["config"]["gn_groups"] != GN_GROUPS:
        sys.exit(f"images_torch: disco's group norms have {man['config']['gn_groups']} groups, this twin {GN_GROUPS}")
    dt = torch.float64 if a.double else torch.float32
    model = Model(c).to(dt)
    load = lambda sub, name: np.load(os.path.join(a.parity, sub, name + ".npy"))  # noqa: E731
    names = [p["name"] for p in man["params"]]
    missing = sorted(set(model.reg.params) ^ set(names))
    if missing:
        sys.exit(f"images_torch: the param names differ from disco's: {missing[:10]}")
    with torch.no_grad():
        for name in names:
            p, kind = model.reg.params[name]
            v = Registry.to_torch(kind, load("param", name))
            if tuple(v.shape) != tuple(p.shape):
                sys.exit(f"images_torch: {name} is {v.shape} in disco, {tuple(p.shape)} here")
            p.copy_(torch.from_numpy(np.ascontiguousarray(v)).to(dt))
    inp = {i["name"]: load("input", i["name"]) for i in man["inputs"]}
    nhwc = lambda v: torch.from_numpy(v).to(dt).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    f = lambda v: torch.from_numpy(v).to(dt)  # noqa: E731
    gumbel = f(inp["gumbel"]) if "gumbel" in inp else None
    drop = f(inp["drop"]) if "drop" in inp else None
    loss = model.loss(nhwc(inp["x"]), torch.from_numpy(inp["y"]).long(), f(inp["sigma"]), nhwc(inp["noise"]), gumbel, drop)
    loss.backward()
    if not c["baseline"]:
        with torch.no_grad():
            top2 = (model.vit(nhwc(inp["x"]) * 2.0 - 1.0) + gumbel).topk(2, -1).values
            margin = (top2[..., 0] - top2[..., 1]).min().item()
        print(f"smallest gap between the two largest noisy logits: {margin:.3g} (the straight-through one-hot "
              f"could differ below ~1e-5)")
    disco_loss = float(load("", "loss"))
    loss_err = abs(loss.item() - disco_loss) / abs(disco_loss)
    rows = []
    for name in names:
        p, kind = model.reg.params[name]
        gt = Registry.to_disco(kind, p.grad).double().numpy()
        gd = load("grad", name).astype(np.float64)
        nd = np.linalg.norm(gd)
        rows.append((np.linalg.norm(gt - gd) / nd if nd > 0 else np.linalg.norm(gt), name, nd))
    rows.sort(reverse=True)
    kind = "DisCo-Diff" if not c["baseline"] else "EDM baseline"
    print(f"{kind}, batch {man['batch']}, torch {torch.__version__} {'float64' if a.double else 'float32'} "
          f"against disco's float32 ({man['backend']}), {len(names)} params")
    print(f"loss: disco {disco_loss:.6f} torch {loss.item():.6f}, relative difference {loss_err:.2e} (tolerance {a.loss_tol:g})")
    print(f"gradients, ||g_torch - g_disco|| / ||g_disco|| per param, the {min(a.show, len(rows))} worst:")
    for err, name, nd in rows[:a.show]:
        print(f"  {err:10.2e}  {name}  (||g_disco|| {nd:.3g})")
    print(f"median {rows[len(rows) // 2][0]:.2e}, worst {rows[0][0]:.2e} ({rows[0][1]}; tolerance {a.tol:g})")
    ok = loss_err <= a.loss_tol and rows[0][0] <= a.tol
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


# ---- benchmarks ------------------------------------------------------------------------------

def lr_at(step, steps):
    """dc_lr_at of disco's stage-1 setup (warmup cut to steps/10 as `disco train --steps` does)"""
    warmup = min(WARMUP_STEPS, steps // 10)
    if step < warmup:
        return LR * (step + 1) / warmup
    span = max(1, steps - warmup)
    return LR * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / span)))


def train_bench(a, c, fmt):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from cnn_torch import load_set, optimizer_step  # the CNN comparison's data reader and step
    x_all, y_all = load_set(a.data, "train")
    gen = torch.Generator().manual_seed(a.seed)
    t0 = time.perf_counter()
    model = Model(c).to(memory_format=fmt)
    params = list(model.parameters())
    ema = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=LR, betas=(B1, B2), eps=EPS, weight_decay=0.0)
    per_epoch = x_all.shape[0] // a.batch
    t1 = None
    for s in range(a.steps):
        if s == a.warmup:
            t1 = time.perf_counter()
        if s % per_epoch == 0:
            perm = torch.randperm(x_all.shape[0], generator=gen)
        idx = perm[(s % per_epoch) * a.batch:(s % per_epoch + 1) * a.batch]
        x01, labels, b = x_all[idx].contiguous(memory_format=fmt), y_all[idx], a.batch
        sigma = torch.exp(torch.randn(b, 1, generator=gen) * P_STD + P_MEAN)
        noise = torch.randn(b, 1, SIDE, SIDE, generator=gen).contiguous(memory_format=fmt)
        gumbel = drop = None
        if not c["baseline"]:
            gumbel = -torch.log(-torch.log(torch.rand(b, c["m"], c["k"], generator=gen).clamp_(1e-7, 1 - 1e-7)))
            drop = (torch.rand(b, 1, 1, generator=gen) < c["null_prob"]).float()
        for g in opt.param_groups:
            g["lr"] = lr_at(s, a.steps)
        opt.zero_grad(set_to_none=True)
        loss = model.loss(x01, labels, sigma, noise, gumbel, drop)
        optimizer_step(loss, opt, params, CLIP, ema, EMA)
    t2 = time.perf_counter()
    print(f"torch {torch.__version__} {a.layout} train: {a.steps} steps of batch {a.batch}, loss {loss.item():.4f}; "
          f"whole {a.steps * a.batch / (t2 - t0):.1f} images/s ({t2 - t0:.2f} s); "
          f"steps {a.warmup + 1}..{a.steps} {(a.steps - a.warmup) * a.batch / (t2 - t1):.1f} images/s")


@torch.no_grad()
def sample_bench(a, c, fmt):
    gen = torch.Generator().manual_seed(a.seed)
    model = Model(c).to(memory_format=fmt)
    b = a.batch
    labels = torch.arange(b) % CLASSES
    lat_codes = None if c["baseline"] else torch.randint(0, c["k"], (b, c["m"]), generator=gen)
    x = (torch.randn(b, 1, SIDE, SIDE, generator=gen) * 80.0).contiguous(memory_format=fmt)
    sigmas = torch.exp(torch.linspace(math.log(80.0), math.log(0.002), a.calls + a.warmup))
    for i in range(a.calls + a.warmup):
        if i == a.warmup:
            t1 = time.perf_counter()
        lat = None if lat_codes is None else model.tokens_of_codes(lat_codes)
        d = model.denoise(x, torch.full((b, 1), float(sigmas[i])), labels, lat)
    dt = time.perf_counter() - t1
    print(f"torch {torch.__version__} {a.layout} sample: {a.calls} denoiser calls at batch {b} "
          f"(|D| {d.abs().mean().item():.3f}): {a.calls * b / dt:.1f} denoiser images/s ({dt:.3f} s)")


def main():
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--parity", metavar="DIR")
    mode.add_argument("--train-bench", action="store_true")
    mode.add_argument("--sample-bench", action="store_true")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--loss-tol", type=float, default=1e-5)
    ap.add_argument("--double", action="store_true")
    ap.add_argument("--show", type=int, default=8)
    ap.add_argument("--layout", choices=["nchw", "channels_last"], default="nchw")
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=os.environ.get("DISCO_FMNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.parity:
        return parity(a)
    c = dict(DEFAULTS, baseline=a.baseline)
    fmt = torch.channels_last if a.layout == "channels_last" else torch.contiguous_format
    if a.train_bench:
        a.batch = a.batch or 128
        if a.steps <= a.warmup:
            ap.error("--steps must be more than --warmup")
        train_bench(a, c, fmt)
    else:
        a.batch = a.batch or 250
        if a.calls < 1:
            ap.error("--calls must be at least 1")
        sample_bench(a, c, fmt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
