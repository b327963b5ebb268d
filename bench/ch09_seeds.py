"""Chapter 9's training-dependent headlines over several training seeds.

The chapter trains a Transformer on chapter 6's translation corpus and a decoder-only
language model on its target side, once each (seed 0). This script trains both exactly as
``notebooks/09_transformer.ipynb`` does (same corpus, batches, steps, optimiser, schedule,
sizes) for several training seeds and writes a Markdown table of

- token accuracy of greedy translations on the longest test bucket (25–30 source words),
  BLEU of greedy and of beam search (width 4), the smallest beam - greedy difference of
  sequence log-probability over the test set (>= 0: beam never found a less likely one);
- per layer and head: the share of target words whose argmax cross-attention (teacher
  forced on the reference) is the gold source word;
- the language model's held-out perplexity against the bigram model's, and the share of
  400 sentences sampled at temperature 1 that the grammar accepts (both models), plus the
  shares at temperature 0.25 and 3 and at temperature 2 with and without top-k.

The chapter asserts only what holds on every seed here. Each run uses one thread; runs go
in parallel over ``--jobs`` processes.

    .venv/bin/python bench/ch09_seeds.py                  # -> bench/ch09_seeds.md
    .venv/bin/python bench/ch09_seeds.py --seeds 2 --output /tmp/ch09.md
    .venv/bin/python bench/ch09_seeds.py --first-seed 1 --seeds 2 --jobs 2  # seeds 1, 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import attnbook.transformer as tfm
from attnbook import set_seed
from attnbook.data.grammar import is_grammatical, sentences
from attnbook.data.translation import (
    bucketed_batches,
    make_batch,
    make_corpus,
    source_vocab,
    target_vocab,
)
from attnbook.decoding import BigramLM, beam_search, greedy, sample
from attnbook.metrics import corpus_bleu, token_accuracy

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "bench" / "ch09_seeds.md"
# as in notebooks/09_transformer.ipynb
BATCH, STEPS, WARMUP, FACTOR, COOL = 128, 700, 50, 0.5, 300
LM_STEPS, LM_BATCH, LM_LR, TOP_K = 800, 128, 5e-3, 3


def _corpus():
    corpus = make_corpus(n_train=20000, n_val=500, n_test=1000, max_len=30, seed=0)
    return corpus, source_vocab(), target_vocab()


def ours_lr(step, d_model):
    """The paper's warm-up schedule, brought down linearly to 0 over the last COOL steps."""
    return tfm.warmup_lr(step, d_model, WARMUP, FACTOR) * min(1.0, (STEPS - step + 1) / COOL)


def train_transformer(seed, corpus, src_vocab, tgt_vocab):
    cfg = tfm.TransformerConfig(len(src_vocab), len(tgt_vocab), d_model=64, num_heads=4,
                                d_ff=128, num_encoder_layers=2, num_decoder_layers=2,
                                norm_first=False, max_len=64)
    set_seed(seed)
    model = tfm.Transformer(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: ours_lr(i + 1, cfg.d_model))
    batches = bucketed_batches(corpus.train, BATCH, src_vocab, tgt_vocab, seed=seed)
    for _ in range(STEPS):
        b = next(batches)
        logits, _ = model(b.src, b.src_len, b.tgt_in)
        loss = F.cross_entropy(logits.transpose(1, 2), b.tgt_out, ignore_index=tgt_vocab.pad)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return model.eval()


def lm_tensor(sents, vocab):
    rows = [[vocab.bos, *vocab.encode(s), vocab.eos] for s in sents]
    width = max(map(len, rows))
    return torch.tensor([r + [vocab.pad] * (width - len(r)) for r in rows])


def train_lm(seed, lm_train, vocab):
    cfg = tfm.LMConfig(len(vocab), d_model=64, num_heads=4, d_ff=128, num_layers=2,
                       norm_first=True, max_len=64)
    set_seed(seed)
    lm = tfm.TransformerLM(cfg)
    opt = torch.optim.Adam(lm.parameters(), lr=LM_LR, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LM_LR, total_steps=LM_STEPS,
                                                pct_start=0.1)
    rng = np.random.default_rng(seed)
    for _ in range(LM_STEPS):
        batch = [lm_train[j] for j in rng.integers(len(lm_train), size=LM_BATCH)]
        n_targets = sum(len(s) + 1 for s in batch)
        batch.sort(key=len)  # two halves of similar lengths: less padding, same gradient
        loss = 0.0
        for half in (batch[:LM_BATCH // 2], batch[LM_BATCH // 2:]):
            ids = lm_tensor(half, vocab)
            logits, _ = lm(ids[:, :-1])
            loss = loss + F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], ignore_index=0,
                                          reduction="sum") / n_targets
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return lm.eval()


def grammatical_share(log_prob_fn, vocab, n, temperature, top_k=None):
    out = sample(log_prob_fn, n, vocab.bos, vocab.eos, max_len=45, temperature=temperature,
                 top_k=top_k, generator=torch.Generator().manual_seed(0))
    return float(np.mean([is_grammatical(vocab.decode(r)) for r in out.tokens]))


def run(seed: int) -> dict:
    torch.set_num_threads(1)
    corpus, src_vocab, tgt_vocab = _corpus()
    model = train_transformer(seed, corpus, src_vocab, tgt_vocab)
    lm_train, lm_test = sentences(corpus.train, "target"), sentences(corpus.test, "target")
    lm = train_lm(seed, lm_train, tgt_vocab)
    with torch.no_grad():
        return evaluate(seed, corpus, src_vocab, tgt_vocab, model, lm, lm_train, lm_test)


def evaluate(seed, corpus, src_vocab, tgt_vocab, model, lm, lm_train, lm_test) -> dict:
    test = make_batch(corpus.test, src_vocab, tgt_vocab)
    refs = [list(p.tgt) for p in corpus.test]
    fn = model.log_prob_fn(test.src, test.src_len)
    g = greedy(fn, len(refs), tgt_vocab.bos, tgt_vocab.eos, max_len=50)
    b = beam_search(fn, len(refs), tgt_vocab.bos, tgt_vocab.eos, beam_width=4, max_len=50)
    hyp_g = [tgt_vocab.decode(r) for r in g.tokens]
    hyp_b = [tgt_vocab.decode(r) for r in b.tokens]
    long = [i for i, p in enumerate(corpus.test) if len(p.src) >= 25]
    _, cross = model(test.src, test.src_len, test.tgt_in, need_weights=True)
    gold, real = test.align, test.align >= 0
    agree = ((cross.argmax(-1) == gold[:, None, None]) & real[:, None, None]).sum((0, 3))
    agree = (agree / real.sum()).numpy()  # (L, h)
    mean_head = cross.mean(2).argmax(-1)  # (B, L, T)
    agree_mean = (((mean_head == gold[:, None]) & real[:, None]).sum((0, 2)) / real.sum())

    ids = lm_tensor(lm_test, tgt_vocab)
    logits, _ = lm(ids[:, :-1])
    nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], ignore_index=0, reduction="sum")
    bigram = BigramLM(lm_train, tgt_vocab, smoothing=0.1)
    return {
        "seed": seed,
        "acc_long": float(np.mean([token_accuracy(hyp_g[i], refs[i]) for i in long])),
        "bleu_greedy": corpus_bleu(hyp_g, refs).score,
        "bleu_beam": corpus_bleu(hyp_b, refs).score,
        "beam_minus_greedy_min": float((b.log_probs - g.log_probs).min()),
        "beam_changed": sum(x != y for x, y in zip(hyp_g, hyp_b, strict=True)),
        "agree": agree,
        "agree_mean": agree_mean.numpy(),
        "ppl_lm": math.exp(nll.item() / (ids[:, 1:] != 0).sum().item()),
        "ppl_bigram": bigram.perplexity(lm_test),
        "share_lm": grammatical_share(lm.log_prob_fn, tgt_vocab, 400, 1.0),
        "share_bigram": grammatical_share(bigram.log_prob_fn, tgt_vocab, 400, 1.0),
        "share_lm_cold": grammatical_share(lm.log_prob_fn, tgt_vocab, 150, 0.25),
        "share_lm_hot": grammatical_share(lm.log_prob_fn, tgt_vocab, 150, 3.0),
        "share_lm_t2": grammatical_share(lm.log_prob_fn, tgt_vocab, 150, 2.0),
        "share_lm_t2_topk": grammatical_share(lm.log_prob_fn, tgt_vocab, 150, 2.0, TOP_K),
    }


def table(results: list[dict]) -> str:
    lines = [
        "# Chapter 9 over training seeds",
        "",
        f"Written by `bench/ch09_seeds.py` on {dt.date.today()} (one thread per run). "
        f"Translation: post-LN Transformer, {STEPS} steps, warm-up {WARMUP}, factor "
        f"{FACTOR}, linear cool-down over the last {COOL}; language model: pre-LN, "
        f"{LM_STEPS} steps, lr {LM_LR}.",
        "",
        "| seed | acc 25–30 | BLEU greedy | BLEU beam 4 | min(beam − greedy) log p | "
        "beam changed | ppl LM | ppl bigram | grammatical LM | grammatical bigram | "
        f"LM τ=0.25 | LM τ=3 | LM τ=2 | LM τ=2, top-{TOP_K} |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['seed']} | {r['acc_long']:.3f} | {r['bleu_greedy']:.2f} | "
            f"{r['bleu_beam']:.2f} | {r['beam_minus_greedy_min']:.1e} | {r['beam_changed']} | "
            f"{r['ppl_lm']:.3f} | {r['ppl_bigram']:.3f} | {r['share_lm']:.1%} | "
            f"{r['share_bigram']:.1%} | {r['share_lm_cold']:.1%} | {r['share_lm_hot']:.1%} | "
            f"{r['share_lm_t2']:.1%} | {r['share_lm_t2_topk']:.1%} |")
    L, h = results[0]["agree"].shape
    lines += ["", "Argmax cross-attention = gold source word (teacher forced, test set), "
              "per layer and head; last column: heads averaged.", "",
              "| seed | " + " | ".join(f"L{li + 1}H{k + 1}" for li in range(L) for k in range(h))
              + " | " + " | ".join(f"L{li + 1} mean" for li in range(L)) + " |",
              "|---" * (L * h + L + 1) + "|"]
    for r in results:
        cells = [f"{v:.1%}" for v in r["agree"].flatten()] + \
                [f"{v:.1%}" for v in r["agree_mean"]]
        lines.append(f"| {r['seed']} | " + " | ".join(cells) + " |")
    agree = np.stack([r["agree"] for r in results])  # (seeds, L, h)
    best = agree.max(2)  # (seeds, L): the best head of each layer
    lines += ["", "Best head per layer, lowest over seeds: " + ", ".join(
        f"layer {li + 1} {best[:, li].min():.1%}" for li in range(L)) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, range(args.first_seed, args.first_seed + args.seeds)))
    args.output.write_text(table(results), encoding="utf-8")
    print(table(results))


if __name__ == "__main__":
    main()
