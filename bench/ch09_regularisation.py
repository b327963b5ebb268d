"""Chapter 9's dropout and label-smoothing experiment over seeds and instruction sets.

Section 9.11 of ``notebooks/09_transformer.ipynb`` trains three copies of a small
Transformer (one encoder and one decoder layer, d = 64) on only the first ``N_PAIRS``
training pairs of chapter 6's corpus: plain, with dropout, and with label smoothing. This
script trains them exactly as the notebook does, for several training seeds and under the
kernels of other CPUs (``ATEN_CPU_CAPABILITY``, as ``bench/notebook_seeds.py`` does), and
tabulates, per run and setting,

- the loss on its own training pairs and on the first ``N_VAL`` validation pairs (teacher forced,
  evaluation mode, plain cross-entropy), and the validation loss every ``EVERY`` steps;
- the share of validation words predicted right (argmax, teacher forced) and the mean
  probability of the predicted word (the model's confidence);
- the BLEU of greedy translations of the validation sources;

then checks the claims the chapter asserts and says whether each held on every run.
Each run uses one thread; runs go two at a time, each in a fresh process.

    .venv/bin/python bench/ch09_regularisation.py               # -> bench/ch09_regularisation.md
    .venv/bin/python bench/ch09_regularisation.py --seeds 0 1 --capabilities native
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "09_transformer.ipynb"
OUTPUT = ROOT / "bench" / "ch09_regularisation.md"
CAPABILITIES = {"native": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
                "default": {"ATEN_CPU_CAPABILITY": "default"}}
# as in the notebook's section 9.11
N_PAIRS, SMALL_STEPS, SMALL_BATCH, N_VAL, EVERY, SMALL_LR = 100, 200, 25, 250, 25, 5e-3
DROPOUT, SMOOTHING = 0.1, 0.1
NOTES = "<!-- notes: kept when the script rewrites the table -->"
SETTINGS = {"plain": (0.0, 0.0), f"dropout {DROPOUT}": (DROPOUT, 0.0),
            f"smoothing {SMOOTHING}": (0.0, SMOOTHING)}
# the notebook's lines that these constants must match
NOTEBOOK_LINES = (
    f"N_PAIRS, SMALL_STEPS, SMALL_BATCH, N_VAL = {N_PAIRS}, {SMALL_STEPS}, {SMALL_BATCH}, "
    f"{N_VAL}",
    "val = make_batch(corpus.val[:N_VAL], src_vocab, tgt_vocab)",
    f"DROPOUT, SMOOTHING = {DROPOUT}, {SMOOTHING}",
    f"def train_small(dropout=0.0, smoothing=0.0, seed=0, lr={SMALL_LR}):",
    f"if (i + 1) % {EVERY} == 0:",
    "small_cfg = replace(cfg, num_encoder_layers=1, num_decoder_layers=1)",
)


def check_notebook() -> None:
    """Refuse to run if the notebook's experiment has other settings than this script."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    missing = [line for line in NOTEBOOK_LINES if line not in code]
    if missing:
        raise SystemExit(f"{NOTEBOOK.name} no longer has: {missing}; update this script")


def run(seed: int) -> dict:
    """One seed, in this process (its ATEN_CPU_CAPABILITY set by the caller)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    import attnbook.transformer as tfm
    from attnbook import set_seed
    from attnbook.data.translation import (
        bucketed_batches,
        make_batch,
        make_corpus,
        source_vocab,
        target_vocab,
    )
    from attnbook.decoding import greedy
    from attnbook.metrics import corpus_bleu

    torch.set_num_threads(1)
    corpus = make_corpus(n_train=20000, n_val=500, n_test=1000, max_len=30, seed=0)
    src_vocab, tgt_vocab = source_vocab(), target_vocab()
    cfg = tfm.TransformerConfig(len(src_vocab), len(tgt_vocab), d_model=64, num_heads=4,
                                d_ff=128, num_encoder_layers=1, num_decoder_layers=1,
                                norm_first=False, max_len=64)
    pairs = corpus.train[:N_PAIRS]
    val = make_batch(corpus.val[:N_VAL], src_vocab, tgt_vocab)
    seen = make_batch(pairs, src_vocab, tgt_vocab)

    @torch.no_grad()
    def evaluate(model, b):
        training = model.training
        model.eval()
        logits, _ = model(b.src, b.src_len, b.tgt_in)
        real = b.tgt_out != tgt_vocab.pad
        p = logits[real].softmax(-1)
        model.train(training)
        return {"loss": F.cross_entropy(logits[real], b.tgt_out[real]).item(),
                "accuracy": (p.argmax(-1) == b.tgt_out[real]).float().mean().item(),
                "confidence": p.max(-1).values.mean().item()}

    def train_small(dropout, smoothing):
        set_seed(seed)
        model = tfm.Transformer(replace(cfg, dropout=dropout))
        opt = torch.optim.Adam(model.parameters(), lr=SMALL_LR, betas=(0.9, 0.98))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=SMALL_LR,
                                                    total_steps=SMALL_STEPS, pct_start=0.1)
        batches = bucketed_batches(pairs, SMALL_BATCH, src_vocab, tgt_vocab, seed=seed)
        curve = []
        for i in range(SMALL_STEPS):
            b = next(batches)
            logits, _ = model(b.src, b.src_len, b.tgt_in)
            loss = F.cross_entropy(logits.transpose(1, 2), b.tgt_out,
                                   ignore_index=tgt_vocab.pad, label_smoothing=smoothing)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if (i + 1) % EVERY == 0:
                curve.append(evaluate(model, val)["loss"])
        return model.eval(), curve

    out = {"seed": seed, "capability": torch.backends.cpu.get_cpu_capability()}
    refs = [list(p.tgt) for p in corpus.val[:N_VAL]]
    for name, (dropout, smoothing) in SETTINGS.items():
        model, curve = train_small(dropout, smoothing)
        row = evaluate(model, val)
        row["train loss"] = evaluate(model, seen)["loss"]
        row["curve"] = curve
        fn = model.log_prob_fn(val.src, val.src_len)
        tokens = greedy(fn, len(refs), tgt_vocab.bos, tgt_vocab.eos, max_len=50).tokens
        row["bleu"] = corpus_bleu([tgt_vocab.decode(t) for t in tokens], refs).score
        out[name] = row
    return out


def claims(r: dict) -> dict[str, bool]:
    """The chapter's assertions on one run (keep in step with the notebook's asserts)."""
    plain, drop, smooth = (r[k] for k in SETTINGS)
    return {
        "plain memorises (train loss < 0.1)": plain["train loss"] < 0.1,
        "plain's held-out loss ends above its minimum by > 0.1":
            plain["curve"][-1] > min(plain["curve"]) + 0.1,
        "dropout: lower held-out loss than plain": drop["loss"] < plain["loss"],
        "dropout: higher accuracy than plain": drop["accuracy"] > plain["accuracy"],
        "dropout: higher BLEU than plain": drop["bleu"] > plain["bleu"],
        "smoothing: lower held-out loss than plain": smooth["loss"] < plain["loss"],
        "smoothing: less confident than plain by > 0.1":
            smooth["confidence"] < plain["confidence"] - 0.1,
        "smoothing: confidence closer to accuracy than plain's":
            abs(smooth["confidence"] - smooth["accuracy"])
            < abs(plain["confidence"] - plain["accuracy"]),
        "plain is over-confident (confidence > accuracy)":
            plain["confidence"] > plain["accuracy"],
        "smoothing: accuracy within 2 points of plain's":
            abs(smooth["accuracy"] - plain["accuracy"]) < 0.02,
        "smoothing: BLEU within 2 of plain's": abs(smooth["bleu"] - plain["bleu"]) < 2,
    }


def worker(seed: int, capability: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")}
    env.update(CAPABILITIES[capability])
    done = subprocess.run([sys.executable, __file__, "--worker", str(seed)], env=env,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["isa"] = capability
    return result


def table(results: list[dict]) -> str:
    cols = ["train loss", "loss", "accuracy", "confidence", "bleu"]
    lines = ["| instruction set | seed | setting | " + " | ".join(cols)
             + " | held-out loss every " + f"{EVERY} steps |",
             "|---|---:|---|" + "---:|" * len(cols) + "---|"]
    for r in results:
        for name in SETTINGS:
            row = r[name]
            lines.append(f"| {r['isa']} ({r['capability']}) | {r['seed']} | {name} | "
                         + " | ".join(f"{row[c]:.4f}" if c != "bleu" else f"{row[c]:.2f}"
                                      for c in cols)
                         + " | " + " ".join(f"{v:.2f}" for v in row["curve"]) + " |")
    lines += ["", "Ranges over every run:", "",
              "| setting | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name in SETTINGS:
        cells = []
        for c in cols:
            v = [r[name][c] for r in results]
            fmt = ".2f" if c == "bleu" else ".4f"
            cells.append(f"{min(v):{fmt}}–{max(v):{fmt}}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    plain, drop, smooth = list(SETTINGS)
    gaps = {
        "dropout − plain, accuracy": [r[drop]["accuracy"] - r[plain]["accuracy"] for r in results],
        "dropout − plain, BLEU": [r[drop]["bleu"] - r[plain]["bleu"] for r in results],
        "smoothing − plain, accuracy": [r[smooth]["accuracy"] - r[plain]["accuracy"]
                                        for r in results],
        "smoothing − plain, BLEU": [r[smooth]["bleu"] - r[plain]["bleu"] for r in results],
        "plain: final − lowest held-out loss": [r[plain]["curve"][-1] - min(r[plain]["curve"])
                                                for r in results],
    }
    lines += ["", "| difference | min | max |", "|---|---:|---:|"]
    lines += [f"| {k} | {min(v):.4f} | {max(v):.4f} |" for k, v in gaps.items()]
    lines += ["", "| claim | held on every run |", "|---|---|"]
    for claim in claims(results[0]):
        held = [claims(r)[claim] for r in results]
        verdict = "yes" if all(held) else f"no ({held.count(False)} of {len(held)} failed)"
        lines.append(f"| {claim} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--capabilities", nargs="+", default=list(CAPABILITIES),
                        choices=list(CAPABILITIES))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(run(args.worker)))
        return 0
    check_notebook()
    jobs = [(s, c) for c in args.capabilities for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: worker(*job), jobs))
    text = f"""# Chapter 9, section 9.11: dropout and label smoothing over seeds and CPUs

Written by `bench/ch09_regularisation.py` on {dt.date.today().isoformat()} (one thread per
run). A Transformer with one encoder and one decoder layer (d = 64, h = 4, d_ff = 128,
post-LN) trained {SMALL_STEPS} steps of {SMALL_BATCH} pairs on the first {N_PAIRS} training
pairs of chapter 6's corpus (Adam, one-cycle schedule peaking at {SMALL_LR}, gradients
clipped at 1): plain, with dropout {DROPOUT} (embeddings, attention weights, FFN hidden
units, sublayer outputs), and with label smoothing {SMOOTHING}. Losses, accuracy and
confidence on the first {N_VAL} validation pairs, teacher forced, in evaluation mode; BLEU of greedy
translations of the same pairs. Instruction sets: `native` is this machine's; `avx2` and
`default` set `ATEN_CPU_CAPABILITY` (the kernels of an AVX2 CPU and PyTorch's
unvectorised ones). Seed 0 under `native` is the notebook's own run.

{table(results)}
"""
    old = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    if NOTES in old:  # notes written by hand below the marker are kept
        text += "\n" + old[old.index(NOTES):]
    args.output.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
