"""PyTorch side of `cargo run --release --example train_speed`.

Usage: python3 benches/tab_resnet_torch.py THREADS [--quick | --large]
The reference tab-ResNet architecture (REFERENCE.md §2) written out in plain PyTorch:
Fourier level embedding, projection, pre-LayerNorm FiLM blocks with GELU, LayerNorm ->
LeakyReLU -> Linear head; one step = ExpConcrete perturbation + forward + per-group KL loss +
backward + grad-norm clip + AdamW + EMA, batch 256 on a bank-shaped input (10 groups, 53
columns). Prints `torch_WIDTH_DEPTH STEP_MS ROWS_PER_S`.
"""
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

threads = int(sys.argv[1])
quick = "--quick" in sys.argv
large = "--large" in sys.argv
torch.set_num_threads(threads)
torch.manual_seed(0)
GROUPS = [12, 4, 8, 3, 3, 3, 2, 10, 5, 3]
D = sum(GROUPS)
taus = torch.exp(torch.linspace(math.log(20), math.log(2), 20))


class Block(nn.Module):
    def __init__(self, w, e):
        super().__init__()
        self.norm = nn.LayerNorm(w)
        self.dense_1 = nn.Linear(w, w)
        self.film = nn.Linear(e, 2 * w)
        self.dense_2 = nn.Linear(w, w)

    def forward(self, x, emb):
        h = self.dense_1(F.gelu(self.norm(x)))
        g, b = self.film(emb).chunk(2, dim=1)
        return x + self.dense_2(h * g + b)


class Net(nn.Module):
    def __init__(self, w, depth, e=128):
        super().__init__()
        self.W = nn.Parameter(torch.randn(e // 2), requires_grad=False)
        self.emb = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e), nn.SiLU())
        self.proj = nn.Linear(D, w)
        self.blocks = nn.ModuleList([Block(w, e) for _ in range(depth)])
        self.head = nn.Sequential(nn.LayerNorm(w), nn.LeakyReLU(), nn.Linear(w, D))

    def forward(self, x, t):
        p = t[:, None] * self.W[None, :] * 2 * math.pi
        emb = self.emb(torch.cat([p.sin(), p.cos()], dim=1))
        h = self.proj(x)
        for b in self.blocks:
            h = b(h, emb)
        return self.head(h)


def clean_batch(n):
    cols = []
    for k in GROUPS:
        hot = F.one_hot(torch.randint(k, (n,)), k).float()
        cols.append(torch.log(hot.clamp(1e-5, 1.0)))
    return torch.cat(cols, dim=1)


def step(net, opt, ema, x):
    idx = torch.randint(20, (x.shape[0],))
    tau = taus[idx][:, None]
    noisy, targets = [], []
    for xg in torch.split(x, GROUPS, dim=1):
        u = torch.rand_like(xg)
        g = -torch.log(-torch.log(u + 1e-20) + 1e-20)
        z = (xg + g) / tau
        z = z - torch.logsumexp(z, dim=1, keepdim=True)
        noisy.append(z)
        targets.append(F.softmax(xg - tau * z, dim=1))
    out = net(torch.cat(noisy, dim=1), idx.float())
    loss = sum(
        F.kl_div(F.log_softmax(o, dim=1), t, reduction="batchmean")
        for o, t in zip(torch.split(out, GROUPS, dim=1), targets)
    )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    with torch.no_grad():
        for e, p in zip(ema, net.parameters()):
            e.mul_(0.999).add_(p, alpha=0.001)


shapes = [(256, 4, 60)] if quick else [(1024, 20, 6)] if large else [(256, 4, 60), (1024, 20, 6)]
for width, depth, steps in shapes:
    net = Net(width, depth)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    ema = [p.detach().clone() for p in net.parameters()]
    x = clean_batch(256)
    for _ in range(3):
        step(net, opt, ema, x)
    t = time.perf_counter()
    for _ in range(steps):
        step(net, opt, ema, x)
    step_ms = (time.perf_counter() - t) / steps * 1e3
    xs = clean_batch(4096)
    ts = torch.full((4096,), 3.0)
    with torch.inference_mode():
        net(xs, ts)
        reps = 1 if width > 512 else 5
        t = time.perf_counter()
        for _ in range(reps):
            net(xs, ts)
        rows = 4096 * reps / (time.perf_counter() - t)
    print(f"torch_{width}_{depth} {step_ms:.2f} {rows:.0f}")
