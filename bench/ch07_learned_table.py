"""Chapter 7's learned position table over training seeds: how far training moves it.

Trains the chapter's order classifier with a learned position table exactly as the
notebook does (bench/ch07_seeds.py's settings), and prints, for each seed, the smallest
cosine between a trained position vector and its random start, how far the whole table
moved (relative to its norm) and the mean cosine of neighbouring positions, next to the
sinusoidal table's. Run it under each ATEN_CPU_CAPABILITY to cover instruction sets:

    .venv/bin/python bench/ch07_learned_table.py --seeds 8
    ATEN_CPU_CAPABILITY=avx2 .venv/bin/python bench/ch07_learned_table.py --seeds 8
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F
from ch07_seeds import BATCH, D_MODEL, LENGTH, LR, NUM_LAYERS, NUM_TOKENS, STEPS

from attnbook import set_seed
from attnbook.data.order_task import make_order_batch
from attnbook.positional import sinusoidal_encoding
from attnbook.self_attention import OrderClassifier, OrderClassifierConfig


def neighbour_cosine(table: torch.Tensor) -> float:
    unit = F.normalize(table, dim=-1)
    return (unit[1:] * unit[:-1]).sum(-1).mean().item()


def run(seed: int) -> dict:
    torch.set_num_threads(1)
    set_seed(seed)
    model = OrderClassifier(OrderClassifierConfig(NUM_TOKENS, LENGTH, d_model=D_MODEL,
                                                  num_layers=NUM_LAYERS, encoding="learned"))
    start = model.learned.table.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    stream = torch.Generator().manual_seed(seed)
    for _ in range(STEPS):
        batch = make_order_batch(BATCH, LENGTH, NUM_TOKENS, generator=stream)
        loss = F.cross_entropy(model(batch.tokens)[0], batch.labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    table = model.learned.table.detach()
    return dict(seed=seed, kept=F.cosine_similarity(table, start, dim=-1).min().item(),
                moved=((table - start).norm() / start.norm()).item(),
                neighbours=neighbour_cosine(table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(run, range(args.seeds)))
    isa = os.environ.get("ATEN_CPU_CAPABILITY", "native")
    print(f"ATEN_CPU_CAPABILITY={isa}; sinusoidal neighbours "
          f"{neighbour_cosine(sinusoidal_encoding(LENGTH, D_MODEL)):+.3f}")
    print("| seed | min cos(trained, start) | moved | neighbour cos |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | {r['kept']:.4f} | {r['moved']:.3f} | {r['neighbours']:+.3f} |")
    print(f"ranges: cos {min(r['kept'] for r in rows):.4f}-{max(r['kept'] for r in rows):.4f}, "
          f"moved {min(r['moved'] for r in rows):.3f}-{max(r['moved'] for r in rows):.3f}, "
          f"neighbours {min(r['neighbours'] for r in rows):+.3f}-"
          f"{max(r['neighbours'] for r in rows):+.3f}")


if __name__ == "__main__":
    main()
