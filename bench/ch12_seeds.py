"""Seed study for chapter 12: every training-dependent number the chapter checks.

Trains the chapter's models with the chapter's settings on several seeds and writes
bench/ch12_seeds.md: the class-token encoder on the marker task (occlusion, raw
attention, rollout, flow, gradient x input, entropy of its heads) and the one-layer
attention classifiers of the Jain & Wallace experiments (marker and majority tasks,
with learned and with uniform weights). The chapter asserts only what holds on every
seed here.

    .venv/bin/python bench/ch12_seeds.py            # seeds 0-3
    .venv/bin/python bench/ch12_seeds.py --seeds 6
"""

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from attnbook.cls_encoder import ClsEncoder, ClsEncoderConfig
from attnbook.data.majority_task import make_majority_batch
from attnbook.data.marker_task import make_marker_batch
from attnbook.env import set_seed
from attnbook.faithfulness import (
    AttentionClassifier,
    adversarial_attention,
    js_distance,
    tv_distance,
)
from attnbook.interpret import (
    attention_flow,
    attention_rollout,
    gradient_x_input,
    leave_one_out,
    rank_agreement,
)
from attnbook.softmax import entropy

# The chapter's settings (notebooks/12_interpreting_attention.ipynb).
T, K, STEPS, BATCH, LR = 12, 10, 400, 64, 5e-3  # the class-token encoder
N_TEST, N_FLOW = 200, 50
JW_T, JW_STEPS, JW_LR, JW_PERMS, N_ADV, EPS = 15, 600, 1e-2, 20, 200, 0.01


CHECKS = [
    "- encoder accuracy >= 0.99; mean occlusion drop at the marker and after it > 0.5, "
    "elsewhere < 0.1;",
    "- 0 < occ_low_after < 0.2; in at least half of those where the answer stands twice, "
    "removing both copies costs more than half (occ_both_copies_hurt_count against "
    "occ_low_after_repeated_count);",
    "- rho_rollout > rho_raw_last + 0.1; rho_raw_last, rho_raw_first < 0.3; "
    "|rho_flow - rho_rollout| < 0.1; rho_gradxinput < rho_rollout; "
    "raw_last_peak_on_answer > 0.9; rollout_top2_has_marker > 0.9;",
    "- entropy_min < 1.5 bits, entropy_max > 2 bits, entropy_max - entropy_min > 1;",
    "- marker: attention >= 0.99, uniform < 0.3, permutation median TVD > 0.9, "
    "adversarial kept >= 0.9 at median JS > 0.5;",
    "- majority: both >= 0.99, permutation median TVD < 0.01, adversarial kept >= 0.7 at "
    "median JS > 0.8.",
]


def train_encoder(seed: int) -> ClsEncoder:
    set_seed(seed)
    model = ClsEncoder(ClsEncoderConfig(vocab_size=K + 1, num_classes=K, max_len=T))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(seed)
    for _ in range(STEPS):
        b = make_marker_batch(BATCH, length=T, num_tokens=K, generator=g)
        loss = F.cross_entropy(model(b.tokens)[0], b.targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def encoder(seed: int) -> dict:
    model = train_encoder(seed)
    test = make_marker_batch(N_TEST, length=T, num_tokens=K, seed=1)
    with torch.no_grad():
        logits, weights = model(test.tokens, need_weights=True)  # (B, L, h, T+1, T+1)
    occ = leave_one_out(model, test.tokens)  # (B, T)
    rows = torch.arange(N_TEST)
    decisive = torch.zeros_like(occ, dtype=torch.bool)
    decisive[rows, test.marker_pos] = decisive[rows, test.marker_pos + 1] = True
    methods = {"raw_last": weights[:, -1].mean(1)[:, 0, 1:],
               "raw_first": weights[:, 0].mean(1)[:, 0, 1:],
               "rollout": attention_rollout(weights)[:, 0, 1:],
               "gradxinput": gradient_x_input(model, test.tokens)}
    out = {"enc_acc": (logits.argmax(1) == test.targets).float().mean().item(),
           "occ_marker": occ[rows, test.marker_pos].mean().item(),
           "occ_after_marker": occ[rows, test.marker_pos + 1].mean().item(),
           "occ_others": occ[~decisive].mean().item()}
    low = occ[rows, test.marker_pos + 1] < 0.5  # removing the answer hardly hurts
    after2 = test.tokens[rows, (test.marker_pos + 2).clamp(max=T - 1)]
    repeated = (after2 == test.targets) & (test.marker_pos + 2 < T)
    out["occ_low_after"] = low.float().mean().item()
    out["occ_low_after_repeated"] = repeated[low].float().mean().item()
    out["occ_low_after_repeated_count"] = float(repeated[low].sum())
    both = (low & repeated).nonzero().flatten()  # remove both copies of the answer
    keep = torch.ones(len(both), T, dtype=torch.bool)
    keep[torch.arange(len(both)), test.marker_pos[both] + 1] = False
    keep[torch.arange(len(both)), test.marker_pos[both] + 2] = False
    with torch.no_grad():
        p = model(test.tokens[both])[0].softmax(-1)
        y = p.argmax(-1, keepdim=True)
        drop = p.gather(1, y) - model(test.tokens[both], keep)[0].softmax(-1).gather(1, y)
    out["occ_both_copies_hurt_count"] = float((drop > 0.5).sum())
    out["raw_last_peak_on_answer"] = (methods["raw_last"].argmax(1)
                                      == test.marker_pos + 1).float().mean().item()
    top2 = methods["rollout"].topk(2).indices
    out["rollout_top2_has_marker"] = (top2 == test.marker_pos[:, None]).any(1) \
        .float().mean().item()
    for name, a in methods.items():
        out[f"rho_{name}"] = rank_agreement(a, occ).nanmean().item()
    flow = attention_flow(weights[:N_FLOW])[:, 1:]
    out["rho_flow"] = rank_agreement(flow, occ[:N_FLOW]).nanmean().item()
    H = entropy(weights, axis=-1, base=2).mean((0, 3))  # (L, h) bits
    out.update(entropy_min=H.min().item(), entropy_max=H.max().item())
    return out


def jw_batch(task: str, n: int, **kw):
    if task == "marker":
        b = make_marker_batch(n, length=JW_T, num_tokens=K, **kw)
        return b.tokens, b.targets
    b = make_majority_batch(n, length=JW_T, num_tokens=K, **kw)
    return b.tokens, b.labels


def train_classifier(task: str, uniform: bool, seed: int) -> AttentionClassifier:
    set_seed(seed)
    model = AttentionClassifier(K + 1, K if task == "marker" else 2, uniform=uniform)
    opt = torch.optim.Adam(model.parameters(), lr=JW_LR)
    g = torch.Generator().manual_seed(seed)
    for _ in range(JW_STEPS):
        x, y = jw_batch(task, BATCH, generator=g)
        loss = F.cross_entropy(model(x)[0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def permuted_tvd(model, x) -> torch.Tensor:
    """(B,): median over JW_PERMS random permutations of the weights of the output TVD."""
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        logits, w = model(x)
        tvd = [tv_distance(model(x, w.gather(1, torch.stack(
            [torch.randperm(x.shape[1], generator=g) for _ in range(len(x))])))[0]
            .softmax(-1), logits.softmax(-1)) for _ in range(JW_PERMS)]
    return torch.stack(tvd).median(0).values


def jain_wallace(seed: int) -> dict:
    out = {}
    for task in ("marker", "majority"):
        att = train_classifier(task, False, seed)
        uni = train_classifier(task, True, seed)
        x, y = jw_batch(task, 500, seed=1)
        with torch.no_grad():
            out[f"{task}_acc_attention"] = (att(x)[0].argmax(1) == y).float().mean().item()
            out[f"{task}_acc_uniform"] = (uni(x)[0].argmax(1) == y).float().mean().item()
        out[f"{task}_perm_tvd_median"] = permuted_tvd(att, x).median().item()
        xs = x[:N_ADV]
        adv = adversarial_attention(att, xs, eps=EPS)
        with torch.no_grad():
            logits, w = att(xs)
            moved = tv_distance(att(xs, adv)[0].softmax(-1), logits.softmax(-1))
        js = js_distance(adv, w)
        ok = moved <= 2 * EPS
        out[f"{task}_adv_within"] = ok.float().mean().item()
        out[f"{task}_adv_js_median"] = js[ok].median().item()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows: dict[str, list[float]] = {}
    start = time.perf_counter()
    for seed in range(args.seeds):
        for name, value in {**encoder(seed), **jain_wallace(seed)}.items():
            rows.setdefault(name, []).append(value)
        print(f"seed {seed} done, {time.perf_counter() - start:.0f} s", flush=True)
    head = " | ".join(f"seed {s}" for s in range(args.seeds))
    lines = ["# Chapter 12 seed study", "",
             f"`bench/ch12_seeds.py --seeds {args.seeds}`, one thread; the chapter asserts "
             "only what holds on every seed.", "",
             f"| quantity | {head} | min | max |",
             "|---|" + "---|" * (args.seeds + 2)]
    for name, values in rows.items():
        cells = " | ".join(f"{v:.3f}" for v in values)
        lines.append(f"| {name} | {cells} | {min(values):.3f} | {max(values):.3f} |")
    lines += ["", "What the chapter checks (all hold on every seed above):", "", *CHECKS]
    path = Path(__file__).with_suffix(".md")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
