"""PyTorch side of `cargo run --release --example unet_speed`.

Usage: python3 benches/unet_torch.py THREADS HEIGHT WIDTH STEPS
The segmentation study's conditional UNet (`gnsm_models::UNet` with the study's settings:
16 channels, multipliers 1, 2, 2, one residual block per resolution, attention at the lowest
resolution, GroupNorm of 4 groups, level embedding 64) written out in plain PyTorch. One
training step = Gumbel-softmax perturbation of 8 one-hot masks of 11 classes at a level per
pair + forward + per-pixel KL loss + backward + grad-norm clip + AdamW, as
`MaskScorer::train`. Prints `torch_unet MS MS ...` (one median step time per round of STEPS).
"""
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

threads, height, width, steps = (int(v) for v in sys.argv[1:5])
torch.set_num_threads(threads)
torch.manual_seed(0)
CLASSES, CHANNELS, MULTS, GROUPS, EMB, BATCH, LEVELS = 11, 16, [1, 2, 2], 4, 64, 8, 10
taus = torch.exp(torch.linspace(math.log(20), math.log(2), LEVELS))


class LevelEmbedding(nn.Module):
    def __init__(self, e):
        super().__init__()
        self.register_buffer("w", torch.randn(e // 2))
        self.dense_0 = nn.Linear(e, e)
        self.dense_1 = nn.Linear(e, e)

    def forward(self, levels):
        proj = levels[:, None].float() * self.w[None, :] * 2 * math.pi
        h = torch.cat([torch.sin(proj), torch.cos(proj)], dim=1)
        return F.silu(self.dense_1(F.silu(self.dense_0(h))))


class ResBlock(nn.Module):
    def __init__(self, inp, out):
        super().__init__()
        self.in_norm = nn.GroupNorm(GROUPS, inp, eps=1e-6)
        self.conv_1 = nn.Conv2d(inp, out, 3, padding=1)
        self.emb = nn.Linear(EMB, out)
        self.out_norm = nn.GroupNorm(GROUPS, out, eps=1e-6)
        self.conv_2 = nn.Conv2d(out, out, 3, padding=1)
        self.skip = nn.Conv2d(inp, out, 1) if inp != out else None

    def forward(self, x, emb):
        h = self.conv_1(F.silu(self.in_norm(x))) + self.emb(emb)[:, :, None, None]
        h = self.conv_2(F.silu(self.out_norm(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(GROUPS, c, eps=1e-6)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3 * c, h * w).chunk(3, dim=1)
        weights = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)
        return x + self.proj((v @ weights.transpose(1, 2)).reshape(b, c, h, w))


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        chans = [CHANNELS * m for m in MULTS]
        self.embedding = LevelEmbedding(EMB)
        self.conv_in = nn.Conv2d(3 + CLASSES, CHANNELS, 3, padding=1)
        self.down, self.downsample, prev = nn.ModuleList(), nn.ModuleList(), CHANNELS
        for i, ch in enumerate(chans):
            self.down.append(ResBlock(prev, ch))
            if i + 1 < len(chans):
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
            prev = ch
        last = chans[-1]
        self.mid_1, self.attention, self.mid_2 = ResBlock(last, last), Attention(last), ResBlock(last, last)
        self.up, self.upsample, h_ch = nn.ModuleList(), nn.ModuleList(), last
        for i in reversed(range(len(chans))):
            if i + 1 < len(chans):
                self.upsample.append(nn.Conv2d(h_ch, h_ch, 3, padding=1))
            self.up.append(ResBlock(h_ch + chans[i], chans[i]))
            h_ch = chans[i]
        self.out_norm = nn.GroupNorm(GROUPS, chans[0], eps=1e-6)
        self.conv_out = nn.Conv2d(chans[0], CLASSES, 3, padding=1)

    def forward(self, x, levels):
        emb = self.embedding(levels)
        h, skips = self.conv_in(x), []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid_2(self.attention(self.mid_1(h, emb)), emb)
        for j, block in enumerate(self.up):
            if j > 0:
                h = self.upsample[j - 1](F.interpolate(h, scale_factor=2, mode="nearest"))
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.conv_out(F.silu(self.out_norm(h)))


net = UNet()
opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=0.0)
images = torch.rand(BATCH, 3, height, width)
masks = torch.randint(0, CLASSES, (BATCH, height, width))
log_one_hot = torch.log(F.one_hot(masks, CLASSES).float().clamp_min(1e-30)).permute(0, 3, 1, 2)


def step():
    levels = torch.randint(0, LEVELS, (BATCH,))
    tau = taus[levels][:, None, None, None]
    gumbel = -torch.log(-torch.log(torch.rand_like(log_one_hot).clamp(1e-20, 1 - 1e-7)))
    z = (log_one_hot + gumbel) / tau
    noisy = z - torch.logsumexp(z, dim=1, keepdim=True)
    # The target of the KL objective: the noisy mask's softmax at the clean class.
    target = torch.softmax(z, dim=1).detach()
    logits = net(torch.cat([images, noisy], dim=1), levels)
    loss = (target * (torch.log(target.clamp_min(1e-30)) - F.log_softmax(logits, dim=1))).sum(1).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()


for _ in range(3):
    step()
times = []
for _ in range(steps):
    start = time.perf_counter()
    step()
    times.append((time.perf_counter() - start) * 1e3)
print("torch_unet", f"{statistics.median(times):.2f}")
