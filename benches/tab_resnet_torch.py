"""PyTorch side of `cargo run --release --example train_speed` and `--example group_scaling`.

Usage: python3 benches/tab_resnet_torch.py THREADS [--quick | --large | --growth]
The reference tab-ResNet architecture (Fourier level embedding, projection, pre-LayerNorm
FiLM blocks with GELU, LayerNorm -> LeakyReLU -> Linear head) written out in plain PyTorch.
One training step = ExpConcrete perturbation + forward + per-group KL loss + backward +
grad-norm clip + AdamW + EMA, batch 256.

Default / --quick / --large: a bank-shaped input (10 groups, 53 columns); prints
`torch_WIDTH_DEPTH STEP_MS ROWS_PER_S` (inference rows/s at one level).
--growth: width 256, depth 4 at 2,000 one-hot columns in 10 groups of 200, 100 of 20 and
1,000 of 2; the group operations are batched over the groups (equal sizes: one reshape, the
fastest way PyTorch has), and scoring is the score-norm pass (20 levels, per-group
`-tau + tau*K*softmax`, squared norm per group); prints `growth_G_K STEP_MS SCORE_ROWS_PER_S`.
"""
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

threads = int(sys.argv[1])
quick = "--quick" in sys.argv
large = "--large" in sys.argv
growth = "--growth" in sys.argv
torch.set_num_threads(threads)
torch.manual_seed(0)
BANK_GROUPS = [12, 4, 8, 3, 3, 3, 2, 10, 5, 3]
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
    def __init__(self, d, w, depth, e=128):
        super().__init__()
        self.W = nn.Parameter(torch.randn(e // 2), requires_grad=False)
        self.emb = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e), nn.SiLU())
        self.proj = nn.Linear(d, w)
        self.blocks = nn.ModuleList([Block(w, e) for _ in range(depth)])
        self.head = nn.Sequential(nn.LayerNorm(w), nn.LeakyReLU(), nn.Linear(w, d))

    def forward(self, x, t):
        p = t[:, None] * self.W[None, :] * 2 * math.pi
        emb = self.emb(torch.cat([p.sin(), p.cos()], dim=1))
        h = self.proj(x)
        for b in self.blocks:
            h = b(h, emb)
        return self.head(h)


def clean_batch(groups, n):
    cols = []
    for k in groups:
        hot = F.one_hot(torch.randint(k, (n,)), k).float()
        cols.append(torch.log(hot.clamp(1e-5, 1.0)))
    return torch.cat(cols, dim=1)


def grouped(x, groups):
    """The groups of x as one (B, G, K) view when they are all one size, else a list."""
    if len(set(groups)) == 1:
        return x.view(x.shape[0], len(groups), groups[0])
    return torch.split(x, groups, dim=1)


def step(net, opt, ema, x, groups):
    idx = torch.randint(20, (x.shape[0],))
    tau = taus[idx][:, None]
    equal = len(set(groups)) == 1
    if equal:
        xg = grouped(x, groups)
        tau3 = tau[:, :, None]
        u = torch.rand_like(xg)
        g = -torch.log(-torch.log(u + 1e-20) + 1e-20)
        z = (xg + g) / tau3
        z = z - torch.logsumexp(z, dim=2, keepdim=True)
        target = F.softmax(xg - tau3 * z, dim=2)
        out = grouped(net(z.reshape(x.shape), idx.float()), groups)
        loss = F.kl_div(F.log_softmax(out, dim=2), target, reduction="sum") / x.shape[0]
    else:
        noisy, targets = [], []
        for xg in torch.split(x, groups, dim=1):
            u = torch.rand_like(xg)
            g = -torch.log(-torch.log(u + 1e-20) + 1e-20)
            z = (xg + g) / tau
            z = z - torch.logsumexp(z, dim=1, keepdim=True)
            noisy.append(z)
            targets.append(F.softmax(xg - tau * z, dim=1))
        out = net(torch.cat(noisy, dim=1), idx.float())
        loss = sum(
            F.kl_div(F.log_softmax(o, dim=1), t, reduction="batchmean")
            for o, t in zip(torch.split(out, groups, dim=1), targets)
        )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    with torch.no_grad():
        for e, p in zip(ema, net.parameters()):
            e.mul_(0.999).add_(p, alpha=0.001)


def train_ms(net, groups, steps):
    """Median milliseconds of `steps` training steps after 3 warm-up steps."""
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    ema = [p.detach().clone() for p in net.parameters()]
    x = clean_batch(groups, 256)
    for _ in range(3):
        step(net, opt, ema, x, groups)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step(net, opt, ema, x, groups)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def score_rows_per_s(net, groups, rows=2048, reps=3):
    """Rows/s of the score-norm pass: 20 levels, per-group scores, squared norm per group."""
    x = clean_batch(groups, rows)
    k = torch.tensor(groups, dtype=torch.float32)

    def one_pass():
        norms = []
        for level in range(20):
            out = net(x, torch.full((rows,), float(level)))
            tau = taus[level]
            g = grouped(out, groups)
            if isinstance(g, torch.Tensor):
                s = -tau + tau * groups[0] * F.softmax(g, dim=2)
                norms.append((s * s).sum(dim=2))
            else:
                norms.append(torch.stack(
                    [((-tau + tau * kk * F.softmax(o, dim=1)) ** 2).sum(dim=1)
                     for o, kk in zip(g, groups)], dim=1))
        return torch.stack(norms, dim=1)

    with torch.inference_mode():
        one_pass()
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            one_pass()
            times.append(time.perf_counter() - t)
    return rows / statistics.median(times)


if growth:
    for g, kk in [(10, 200), (100, 20), (1000, 2)]:
        groups = [kk] * g
        net = Net(sum(groups), 256, 4)
        ms = train_ms(net, groups, 20)
        rows = score_rows_per_s(net, groups)
        print(f"growth_{g}_{kk} {ms:.2f} {rows:.0f}", flush=True)
    sys.exit(0)

shapes = [(256, 4, 30)] if quick else [(1024, 20, 6)] if large else [(256, 4, 30), (1024, 20, 6)]
for width, depth, steps in shapes:
    net = Net(sum(BANK_GROUPS), width, depth)
    step_ms = train_ms(net, BANK_GROUPS, steps)
    xs = clean_batch(BANK_GROUPS, 4096)
    ts = torch.full((4096,), 3.0)
    with torch.inference_mode():
        net(xs, ts)
        reps = 1 if width > 512 else 5
        t = time.perf_counter()
        for _ in range(reps):
            net(xs, ts)
        rows = 4096 * reps / (time.perf_counter() - t)
    print(f"torch_{width}_{depth} {step_ms:.2f} {rows:.0f}", flush=True)
