"""Seed study for chapter 10: every training-dependent number the chapter checks.

Runs the chapter's experiments (ViT on the digits, the same ViT against logistic
regression and a bag of patches on digits that move, the pointer network sorting, GAT
against the mean of neighbours, odd-one-out on digit sets) with the chapter's settings
on several seeds and writes bench/ch10_seeds.md. The chapter asserts only what holds on
every seed here.

    .venv/bin/python bench/ch10_seeds.py            # seeds 0-3
    .venv/bin/python bench/ch10_seeds.py --seeds 6 --only graph
    ATEN_CPU_CAPABILITY=avx2 .venv/bin/python bench/ch10_seeds.py --seeds 6 --only moving \\
        --out /tmp/moving_avx2.md
"""

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import nn

from attnbook.data.digits import load_digits_split, make_digit_sets
from attnbook.data.graphs import make_sbm_graph
from attnbook.data.sorting import make_sort_batch
from attnbook.env import set_seed
from attnbook.graph import GraphClassifier
from attnbook.pointer import PointerConfig, PointerNetwork, pointer_loss
from attnbook.sets import OddOneOut
from attnbook.vision import ViT, ViTConfig, patchify

# The chapter's settings (notebooks/10_beyond_language.ipynb).
VIT_STEPS, VIT_BATCH, VIT_LR = 600, 64, 3e-3
PTR_STEPS, PTR_BATCH, PTR_LEN, PTR_LENGTHS = 600, 64, 10, (5, 10, 20, 40, 80)
GAT_STEPS, GAT_LR = 100, 0.01
GAT_GRAPH = dict(num_nodes=800, p_in=0.015, bridge_fraction=0.3, p_bridge=0.03)
SET_STEPS, SET_BATCH = 600, 32
MOVE_CANVAS, MOVE_PATCH, MOVE_COPIES, MOVE_STEPS = 16, 4, 4, 1000


def train_classifier(model, images, labels, steps, seed):
    """The chapter's recipe: AdamW, one-cycle learning rate, batches of 64."""
    opt = torch.optim.AdamW(model.parameters(), lr=VIT_LR, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, VIT_LR, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(labels), (VIT_BATCH,), generator=g)
        loss = F.cross_entropy(model(images[idx])[0], labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def place(images, size, generator):
    """(B, 8, 8) -> (B, size, size): each digit at a random place on a blank canvas."""
    B, h, w = images.shape
    canvas = images.new_zeros(B, size, size)
    rows = torch.randint(size - h + 1, (B,), generator=generator)
    cols = torch.randint(size - w + 1, (B,), generator=generator)
    for i in range(B):
        canvas[i, rows[i]:rows[i] + h, cols[i]:cols[i] + w] = images[i]
    return canvas


class BagOfPatches(nn.Module):
    """Every patch through the same MLP, then their mean: no attention, no positions."""

    def __init__(self, patch_size, d=64, num_classes=10):
        super().__init__()
        self.p = patch_size
        self.embed = nn.Sequential(nn.Linear(patch_size**2, d), nn.ReLU(), nn.Linear(d, d))
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(d, d), nn.ReLU(),
                                  nn.Linear(d, num_classes))

    def forward(self, images):
        z = self.embed(patchify(images, self.p))  # (B, N, d)
        return self.head(z.mean(1)), None  # (B, C), no weights


def vit(seed: int) -> dict:
    split = load_digits_split()
    set_seed(seed)
    model = ViT(ViTConfig(image_size=8, patch_size=2, num_classes=10))
    opt = torch.optim.AdamW(model.parameters(), lr=VIT_LR, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, VIT_LR, total_steps=VIT_STEPS)
    g = torch.Generator().manual_seed(seed)
    for _ in range(VIT_STEPS):
        idx = torch.randint(len(split.train_labels), (VIT_BATCH,), generator=g)
        loss = F.cross_entropy(model(split.train_images[idx])[0], split.train_labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model(split.test_images)[0].argmax(1) == split.test_labels).float().mean()
        perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
        patches = patchify(split.test_images, 2)[:, perm]  # the same shuffle for every image
        shuffled = patches.reshape(-1, 4, 4, 2, 2).permute(0, 1, 3, 2, 4).reshape(-1, 8, 8)
        acc_shuffled = (model(shuffled)[0].argmax(1) == split.test_labels).float().mean()
    pos = F.normalize(model.pos_embed[0, 1:].detach(), dim=-1)  # (N, d)
    sim = pos @ pos.T
    grid = torch.stack(torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij"), -1)
    dist = (grid.reshape(16, 1, 2) - grid.reshape(1, 16, 2)).abs().sum(-1)  # (N, N)
    return {"vit_acc": acc.item(), "vit_acc_shuffled_patches": acc_shuffled.item(),
            "pos_sim_adjacent": sim[dist == 1].mean().item(),
            "pos_sim_far": sim[dist >= 3].mean().item()}


def pointer(seed: int) -> dict:
    set_seed(seed)
    model = PointerNetwork(PointerConfig())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(PTR_STEPS):
        batch = make_sort_batch(PTR_BATCH, PTR_LEN, generator=g)
        loss = pointer_loss(model(batch.values, batch.order), batch.order)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    out = {}
    for n in PTR_LENGTHS:
        test = make_sort_batch(1000, n, seed=1)
        order, _ = model.decode(test.values)
        out[f"ptr_exact_{n}"] = (order == test.order).all(1).float().mean().item()
    return out


def graph(seed: int) -> dict:
    out = {}
    g = make_sbm_graph(seed=seed, **GAT_GRAPH)
    same = (g.labels[:, None] == g.labels[None, :]).float()
    for kind in ("gat", "mean"):
        set_seed(seed)
        model = GraphClassifier(g.x.shape[1], 8, 4, kind=kind, num_heads=4)
        opt = torch.optim.Adam(model.parameters(), lr=GAT_LR, weight_decay=5e-4)
        for _ in range(GAT_STEPS):
            logits, _ = model(g.x, g.adj)
            loss = F.cross_entropy(logits[g.train_mask], g.labels[g.train_mask])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            logits, weights = model(g.x, g.adj)
        t, correct = g.test_mask, logits.argmax(1) == g.labels
        out[f"{kind}_acc"] = correct[t].float().mean().item()
        out[f"{kind}_acc_regular"] = correct[t & ~g.bridge].float().mean().item()
        out[f"{kind}_acc_bridges"] = correct[t & g.bridge].float().mean().item()
        out[f"{kind}_acc_train"] = correct[g.train_mask].float().mean().item()
        out[f"{kind}_within"] = (weights[0].mean(0) * same).sum(1).mean().item()
    return out


def sets(seed: int) -> dict:
    split = load_digits_split()
    test = make_digit_sets(split.test_images, split.test_labels, 500, seed=1)
    out = {}
    for kind in ("attention", "mean"):
        set_seed(seed)
        model = OddOneOut(kind=kind)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for step in range(SET_STEPS):
            batch = make_digit_sets(split.train_images, split.train_labels, SET_BATCH,
                                    seed=10_000 * (seed + 1) + step)
            loss = F.cross_entropy(model(batch.sets), batch.odd)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            out[f"set_{kind}_acc"] = (model(test.sets).argmax(1) == test.odd).float().mean().item()
            big = make_digit_sets(split.test_images, split.test_labels, 500, set_size=20, seed=2)
            out[f"set_{kind}_acc_20"] = (model(big.sets).argmax(1) == big.odd).float().mean().item()
    return out


def moving(seed: int) -> dict:
    """Digits at random places on a 16 x 16 canvas: logistic regression on the pixels, a
    bag of patches and the ViT, all trained on the same 4 placements of each digit."""
    split = load_digits_split()
    g = torch.Generator().manual_seed(0)
    train_x = place(split.train_images.repeat(MOVE_COPIES, 1, 1), MOVE_CANVAS, g)
    train_y = split.train_labels.repeat(MOVE_COPIES)
    test_x = place(split.test_images, MOVE_CANVAS, torch.Generator().manual_seed(1))
    test_y = split.test_labels
    logreg = LogisticRegression(max_iter=2000)
    logreg.fit(train_x.flatten(1).numpy(), train_y.numpy())
    out = {"move_logreg_acc": logreg.score(test_x.flatten(1).numpy(), test_y.numpy()),
           "move_logreg_train": logreg.score(train_x.flatten(1).numpy(), train_y.numpy())}
    set_seed(seed)
    vit = ViT(ViTConfig(image_size=MOVE_CANVAS, patch_size=MOVE_PATCH, num_classes=10))
    set_seed(seed)
    bag = BagOfPatches(MOVE_PATCH)
    for name, model in (("vit", vit), ("bag", bag)):
        train_classifier(model, train_x, train_y, MOVE_STEPS, seed)
        with torch.no_grad():
            out[f"move_{name}_acc"] = (model(test_x)[0].argmax(1) == test_y).float().mean().item()
    with torch.no_grad():
        _, weights = vit(test_x, need_weights=True)
    cls = weights[-1][:, :, 0, 1:].mean(1)  # (B, N): the class token's weights on the patches
    ink = patchify(test_x, MOVE_PATCH).sum(-1) > 0  # (B, N): patches the digit touches
    out["move_cls_on_ink"] = (cls * ink).sum(1).mean().item()
    out["move_ink_share"] = ink.float().mean().item()
    return out


EXPERIMENTS = {"moving": moving, "vit": vit, "pointer": pointer, "graph": graph, "sets": sets}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--only", choices=sorted(EXPERIMENTS))
    parser.add_argument("--out", default=str(Path(__file__).with_name("ch10_seeds.md")))
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = [args.only] if args.only else list(EXPERIMENTS)
    rows, cpu = {}, {}
    for name in names:
        for seed in range(args.seeds):
            t0 = time.process_time()
            for key, value in EXPERIMENTS[name](seed).items():
                rows.setdefault(key, []).append(value)
            cpu.setdefault(name, []).append(time.process_time() - t0)
            print(name, seed, {k: round(v[-1], 4) for k, v in rows.items()}, flush=True)
    lines = ["# Chapter 10 seed study", "",
             f"`bench/ch10_seeds.py`, seeds 0-{args.seeds - 1}, one thread; the chapter "
             "asserts only what holds on every seed.", "",
             "| quantity | " + " | ".join(f"seed {s}" for s in range(args.seeds))
             + " | min | max |", "|---|" + "---|" * (args.seeds + 2)]
    for key, values in rows.items():
        cells = " | ".join(f"{v:.3f}" for v in values)
        lines.append(f"| {key} | {cells} | {min(values):.3f} | {max(values):.3f} |")
    lines += ["", "CPU seconds per seed (one thread): "
              + ", ".join(f"{k} {sum(v) / len(v):.1f}" for k, v in cpu.items()), ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
