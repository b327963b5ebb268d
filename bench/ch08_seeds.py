"""Do chapter 8's heads specialise on every training run? The look-up reader over seeds.

Which head learns which look-up, and how much removing a head costs, depends on the
initialisation. This script trains chapter 8's look-up reader exactly as the notebook
does (same code, constants and test set; tests/test_bench_ch08.py checks it), for
several training seeds, and writes a Markdown table of

- the test accuracy of both read-outs (token after / before the marker),
- for each look-up, the best head's argmax agreement with the known position,
- whether the two look-ups' best heads differ,
- the largest accuracy drop from removing one head, and the smallest (summed over
  both read-outs),
- for the solutions' open questions: the accuracies of a one-head reader, and the most
  a pair of heads costs beyond the sum of its two single-head drops.

It backs what the chapter asserts (every number checked there holds on every seed
here). One thread per run, like the chapter; about 2 s per seed on an idle core.

    .venv/bin/python bench/ch08_seeds.py                  # -> bench/ch08_seeds.md
    .venv/bin/python bench/ch08_seeds.py --seeds 2 --output /tmp/seeds.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from attnbook import set_seed
from attnbook.data.lookup_task import make_lookup_batch
from attnbook.multihead import MultiHeadAttention

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "bench" / "ch08_seeds.md"
V, T, D, H = 10, 12, 32, 4  # vocabulary, length, model size, heads
STEPS, BATCH, LR = 300, 128, 3e-3
TEST_SEED = 12345


# The four definitions below are copied verbatim from notebooks/08_multihead_attention.ipynb.
class LookupReader(nn.Module):
    """Embeddings, one multi-head attention from the marker, two read-outs."""

    def __init__(self, num_tokens, length, d, h):
        super().__init__()
        self.tok = nn.Embedding(num_tokens + 1, d)  # + the marker
        self.pos = nn.Embedding(length, d)
        self.attn = MultiHeadAttention(d, h)
        self.after = nn.Linear(d, num_tokens)
        self.before = nn.Linear(d, num_tokens)

    def forward(self, tokens, marker_pos, need_weights=False):
        B, T = tokens.shape
        x = self.tok(tokens) + self.pos(torch.arange(T))  # (B, T, d)
        query = x[torch.arange(B), marker_pos][:, None]  # (B, 1, d)
        out, w = self.attn(query, x, x, need_weights=need_weights)  # (B, 1, d)
        out = out[:, 0]  # (B, d)
        return self.after(out), self.before(out), w  # w: (B, h, 1, T)


def train_reader(seed, h=H, steps=STEPS):
    set_seed(seed)
    model = LookupReader(V, T, D, h)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    stream = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        b = make_lookup_batch(BATCH, T, V, generator=stream)
        logits_after, logits_before, _ = model(b.tokens, b.marker_pos)
        loss = (F.cross_entropy(logits_after, b.after)
                + F.cross_entropy(logits_before, b.before))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def evaluate(model, batch):
    """Accuracy of each read-out; each head's weights from the marker."""
    la, lb, w = model(batch.tokens, batch.marker_pos, need_weights=True)
    acc = {"after": (la.argmax(-1) == batch.after).float().mean().item(),
           "before": (lb.argmax(-1) == batch.before).float().mean().item()}
    return acc, w[:, :, 0]  # (B, h, T)


@torch.no_grad()
def ablated_accuracy(model, batch, head):
    """Accuracy with head `head` removed (its columns of W_o set to 0)."""
    W = model.attn.W_o.weight  # (d, d) = (out, in)
    d_h = model.attn.d_head
    saved = W.clone()
    W[:, head * d_h:(head + 1) * d_h] = 0.0
    acc, _ = evaluate(model, batch)
    W.copy_(saved)  # put the head back
    return acc


@torch.no_grad()
def pair_drop(model, batch, acc, heads):
    """Summed accuracy drop with several heads removed (as in the solutions)."""
    W, d_h = model.attn.W_o.weight, model.attn.d_head
    saved = W.clone()
    for i in heads:
        W[:, i * d_h:(i + 1) * d_h] = 0.0
    acc_cut, _ = evaluate(model, batch)
    W.copy_(saved)
    return sum(acc[k] - acc_cut[k] for k in acc)


def run(seed: int) -> dict:
    """Train one reader as the chapter does; return the numbers the chapter checks."""
    torch.set_num_threads(1)
    test = make_lookup_batch(1000, T, V, seed=TEST_SEED)
    model = train_reader(seed)
    acc, w = evaluate(model, test)
    top = w.argmax(-1)  # (B, h)
    agree_after = (top == (test.marker_pos + 1)[:, None]).float().mean(0)
    agree_before = (top == (test.marker_pos - 1)[:, None]).float().mean(0)
    drops = torch.tensor([[acc[k] - ablated_accuracy(model, test, i)[k]
                           for k in ("after", "before")] for i in range(H)])
    single = drops.sum(1)
    excess = max(pair_drop(model, test, acc, (i, j)) - single[i] - single[j]
                 for i in range(H) for j in range(i + 1, H))
    acc1, _ = evaluate(train_reader(seed, h=1), test)
    return {"seed": seed, "acc_after": acc["after"], "acc_before": acc["before"],
            "one_head": (acc1["after"], acc1["before"]), "pair_excess": float(excess),
            "agree_after": agree_after.max().item(), "agree_before": agree_before.max().item(),
            "distinct": agree_after.argmax().item() != agree_before.argmax().item(),
            "max_drop": drops.max().item(), "min_drop": drops.sum(1).min().item(),
            "drops": drops.tolist()}


def table(rows: list[dict]) -> str:
    lines = ["| seed | acc after | acc before | best agree after | best agree before "
             "| distinct heads | largest drop | smallest drop | drops per head (after/before) "
             "| one head: acc after/before | pair excess |",
             "|---:|---:|---:|---:|---:|---|---:|---:|---|---|---:|"]
    for r in rows:
        per_head = ", ".join(f"{100 * a:.1f}/{100 * b:.1f}" for a, b in r["drops"])
        lines.append(f"| {r['seed']} | {r['acc_after']:.1%} | {r['acc_before']:.1%} "
                     f"| {r['agree_after']:.1%} | {r['agree_before']:.1%} "
                     f"| {'yes' if r['distinct'] else 'no'} | {100 * r['max_drop']:.1f} "
                     f"| {100 * r['min_drop']:.1f} | {per_head} "
                     f"| {r['one_head'][0]:.1%}/{r['one_head'][1]:.1%} "
                     f"| {100 * r['pair_excess']:.1f} |")
    acc = min(min(r["acc_after"], r["acc_before"]) for r in rows)
    agree = min(min(r["agree_after"], r["agree_before"]) for r in rows)
    worst = (f"Over all seeds: accuracy >= {acc:.1%}; best-head agreement >= {agree:.1%}; "
             f"best heads distinct on {sum(r['distinct'] for r in rows)}/{len(rows)}; "
             f"largest single-head drop {100 * min(r['max_drop'] for r in rows):.1f}–"
             f"{100 * max(r['max_drop'] for r in rows):.1f} points; smallest (summed) "
             f"{100 * min(r['min_drop'] for r in rows):.1f}–"
             f"{100 * max(r['min_drop'] for r in rows):.1f} points. One head: after >= "
             f"{min(r['one_head'][0] for r in rows):.1%}, before <= "
             f"{max(r['one_head'][1] for r in rows):.1%}; pair excess >= "
             f"{100 * min(r['pair_excess'] for r in rows):.1f} points.")
    return "\n".join(lines) + "\n\n" + worst + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    rows = []
    for seed in range(args.seeds):
        rows.append(run(seed))
        print(f"seed {seed} done", flush=True)
    header = (f"# Chapter 8: head specialisation and ablation over training seeds\n\n"
              f"Written by `bench/ch08_seeds.py` on {dt.date.today()}, "
              f"{os.cpu_count()} cores, torch {torch.__version__}, one thread. Training seeds "
              f"0–{args.seeds - 1}; the chapter trains with seed 0. {STEPS} steps of batch "
              f"{BATCH}, Adam lr {LR}; d = {D}, h = {H}, length {T}, {V} tokens; 1,000 test "
              f"sequences. *one head*: a reader with h = 1 (same d); *pair excess*: the "
              f"largest drop from removing two heads minus their two single-head drops "
              f"(points). *agree*: share of test sequences where the head's largest weight is "
              f"on the known position; *drop*: accuracy points lost when one head is removed; "
              f"*smallest drop* sums both read-outs.\n\n")
    args.output.write_text(header + table(rows), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
