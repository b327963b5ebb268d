"""The exercise-checker framework: right answers pass, wrong ones are explained, stubs wait."""

import math
import re

import numpy as np
import pytest
import torch

from attnbook.exercises import Case, ExerciseError, Mistake, check_function
from attnbook.exercises.checker import CheckSpec, generic_wrong_answers, make_compare, spec_of


def reference(x):
    return torch.softmax(x, dim=-1)


MISTAKES = [
    Mistake("softmax over the wrong axis", "normalise over the last axis (dim=-1).",
            wrong=lambda x: torch.softmax(x, dim=0)),
    Mistake("rows do not sum to 1", "divide by the sum.",
            detect=lambda got, exp, case: not torch.allclose(got.sum(-1), torch.ones(()))),
]
CASES = [Case((torch.randn(3, 4, generator=torch.Generator().manual_seed(i)),)) for i in range(3)]


def check(fn):
    return check_function(fn, exercise="softmax", reference=reference, cases=CASES,
                          mistakes=MISTAKES)


def test_right_answer_passes_and_prints_a_tick(capsys):
    assert check(lambda x: x.exp() / x.exp().sum(-1, keepdim=True)).passed is True
    assert "✓ softmax: all 3 cases pass" in capsys.readouterr().out


def test_stub_is_not_attempted_and_does_not_raise(capsys):
    def stub(x):
        raise NotImplementedError

    assert check(stub).passed is False
    assert "not attempted yet" in capsys.readouterr().out


def test_known_mistake_is_named():
    with pytest.raises(ExerciseError, match="wrong axis.*dim=-1"):
        check(lambda x: torch.softmax(x, dim=0))
    with pytest.raises(ExerciseError, match="rows do not sum to 1"):
        check(lambda x: x.exp())


@pytest.mark.parametrize("answer, message", [
    (lambda x: None, "returned None: did you forget the `return`"),
    (lambda x: reference(x).tolist(), "returned a list.*torch.tensor"),
    (lambda x: reference(x).T,
     r"shape \(4, 3\), expected \(3, 4\): your result is the answer transposed"),
    (lambda x: reference(x)[None], r"shape \(1, 3, 4\), expected \(3, 4\): an extra dimension"),
    (lambda x: reference(x).numpy(), "NumPy array.*torch tensor"),
    (lambda x: reference(x).double(), None),
    (lambda x: (reference(x) * 100).long(), "integer dtype torch.int64"),
    (lambda x: reference(x) > 0.5, "boolean tensor.*numbers"),
    (lambda x: reference(x) * float("nan"), "nan at 12 place"),
    (lambda x: "softmax", "returned a str"),
])
def test_wrong_type_or_shape_gets_a_hint_not_a_traceback(answer, message):
    if message is None:  # float64 where float32 is expected: precision differences are fine
        assert check(answer)
        return
    with pytest.raises(ExerciseError, match=message):
        check(answer)


def test_an_error_inside_the_readers_function_is_reported_with_its_cause():
    with pytest.raises(ExerciseError, match="raised ZeroDivisionError") as info:
        check(lambda x: 1 / 0)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_a_function_that_modifies_its_input_is_refused_by_name_and_the_reference_is_safe():
    originals = [case.args[0].clone() for case in CASES]

    def in_place(scores):
        scores.exp_()
        return scores / scores.sum(-1, keepdim=True)

    def named_reference(scores):
        return torch.softmax(scores, dim=-1)

    with pytest.raises(ExerciseError, match="changed its input `scores` in place"):
        check_function(in_place, exercise="softmax", reference=named_reference, cases=CASES)
    for case, original in zip(CASES, originals, strict=True):
        assert torch.equal(case.args[0], original)  # what the reference gets is untouched


@pytest.mark.parametrize("mutate", [
    lambda x, items: x.masked_fill_(x > 0, 0.0),
    lambda x, items: x.__setitem__(0, 5.0),
    lambda x, items: items.append(3),
    lambda x, items: items[0].mul_(2),
])
def test_mutation_of_tensors_lists_and_nested_inputs_is_seen(mutate):
    cases = [Case((torch.tensor([1.0, -2.0, 3.0]), [torch.ones(2), 1]))]  # > 0 and <= 0

    def fn(x, items):
        out = x.sum()
        mutate(x, items)
        return out

    with pytest.raises(ExerciseError, match="in place"):
        check_function(fn, exercise="sum", reference=lambda x, items: x.sum(), cases=cases)


def test_in_place_change_of_an_input_needing_gradients_is_explained():
    def probe(f):
        def run(x):
            return f(x.requires_grad_())
        return run

    def fn(x):
        x.mul_(2)
        return x.sum()

    with pytest.raises(ExerciseError, match="changed one of its inputs in place"):
        check_function(fn, exercise="sum", reference=lambda x: x.sum(), probe=probe,
                       cases=[Case((torch.randn(3),))])


def test_not_a_function():
    with pytest.raises(ExerciseError, match="pass your function itself"):
        check(torch.ones(3))


def test_compare_walks_tuples_and_is_strict_about_types():
    compare = make_compare()
    assert compare((torch.ones(2), 1.0), (torch.ones(2), 1.0)) is None
    assert "NumPy array" in compare((np.ones(2), 1.0), (torch.ones(2), 1.0))
    assert compare(torch.tensor(2.0), 2.0) is None and compare(2, 2.0) is None
    assert compare(2.0, torch.tensor(2.0)) is None
    assert "a bool" in compare(True, 1.0)
    assert "whole number" in compare(2.0, 2) and compare(torch.tensor(2), 2) is None
    assert "off by one" in compare(3, 2)
    assert "extra dimension" in compare(torch.tensor([2.0]), 2.0)
    assert "return value 1" in compare((torch.ones(2), 2.0), (torch.ones(2), 1.0))
    assert "expected 2 return values" in compare(torch.ones(2), (torch.ones(2), 1.0))
    assert compare(True, True) is None and "you returned False" in compare(False, True)


def test_mistake_needs_exactly_one_recogniser():
    with pytest.raises(ValueError, match="exactly one"):
        Mistake("x", "y")


def test_result_is_truthy_only_when_passed_and_displays_nothing_more():
    passed = check(reference)
    assert passed and passed.passed is True
    result = check(lambda x: (_ for _ in ()).throw(NotImplementedError))
    assert not result and result.passed is False
    assert passed._ipython_display_() is None and "passed=True" in repr(passed)


def test_booleans_are_compared_as_booleans_with_the_first_difference():
    compare = make_compare()
    mask = torch.ones(3, 3, dtype=torch.bool).tril()
    assert compare(mask.clone(), mask) is None
    problem = compare(torch.ones(3, 3, dtype=torch.bool).triu(), mask)
    assert "first at index (0, 1): you have True, expected False" in problem
    assert "transposed" in problem
    assert "opposite mask" in compare(~mask, mask)
    assert "boolean tensor (dtype torch.bool) is expected" in compare(mask.float(), mask)
    assert "boolean tensor (dtype torch.bool) is expected" in compare(mask.long(), mask)
    why = make_compare(bool_why="the book's attention takes boolean masks")
    assert "the book's attention takes boolean masks" in why(mask.float(), mask)


@pytest.mark.parametrize("got, words", [
    (lambda w: -w, "sign flipped"),
    (lambda w: 2 * w, "times 2 everywhere"),
    (lambda w: w + 0.5, "plus 0.5 everywhere"),
    (lambda w: w / w.sum(0, keepdim=True), "columns sum to 1 instead of your rows"),
    (lambda w: w * torch.tensor([1.0, 1.0, 0.5])[:, None], r"row \(2,\) sums to 0.5"),
    (lambda w: w * float("inf"), "inf at 12 place.*overflows above about 88.7"),
])
def test_value_differences_get_a_structural_diagnosis(got, words):
    want = torch.softmax(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), -1)
    assert re.search(words, make_compare()(got(want), want))


def test_first_differing_element_is_reported():
    want = torch.zeros(2, 3)
    have = want.clone()
    have[1, 2] = 1.0
    have[1, 0] = 3.0
    assert "2 of 6 entries differ; first at index (1, 0): you have 3, expected 0" in \
        make_compare()(have, want)


def test_a_mistake_that_equals_the_answer_on_the_failing_case_is_not_named():
    # "plain dot product" equals the cosine on perpendicular vectors: no evidence there.
    cases = [Case((torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])), label="perpendicular"),
             Case((torch.tensor([1.0, 2.0]), torch.tensor([2.0, 1.0])), label="other")]
    dot = Mistake("plain dot product", "divide by the norms", wrong=lambda a, b: a @ b)
    with pytest.raises(ExerciseError) as info:
        check_function(lambda a, b: (a @ b) + 1.0, exercise="cosine",
                       reference=lambda a, b: (a @ b) / (a.norm() * b.norm()), cases=cases,
                       mistakes=[dot])
    assert "looks like" not in str(info.value)


def test_a_mistake_is_named_only_if_the_answer_agrees_with_it_wherever_it_differs():
    cases = [Case((torch.tensor([1.0, 2.0]),)), Case((torch.tensor([3.0, -1.0]),))]
    doubled = Mistake("doubled", "do not double", wrong=lambda x: 2 * x)
    reference = lambda x: x  # noqa: E731
    sometimes = lambda x: 2 * x if x[0] < 2 else 3 * x  # noqa: E731
    with pytest.raises(ExerciseError) as info:
        check_function(sometimes, exercise="id", reference=reference, cases=cases,
                       mistakes=[doubled])
    assert "looks like" not in str(info.value)
    with pytest.raises(ExerciseError, match="looks like: doubled"):
        check_function(lambda x: x + x, exercise="id", reference=reference, cases=cases,
                       mistakes=[doubled])


def test_a_detector_that_accepts_the_right_answer_is_not_trusted():
    always = Mistake("always fires", "never shown", detect=lambda got, exp, case: True)
    with pytest.raises(ExerciseError) as info:
        check_function(lambda x: 2 * x, exercise="id", reference=lambda x: x,
                       cases=[Case((torch.ones(2),))], mistakes=[always])
    assert "always fires" not in str(info.value)


def test_a_shape_problem_is_not_explained_by_a_detector():
    with pytest.raises(ExerciseError) as info:
        check(lambda x: reference(x)[:, :2])
    assert "shape (3, 2), expected (3, 4)" in str(info.value)
    assert "rows do not sum" not in str(info.value)


def test_probe_results_are_named_in_words():
    def probe(f):
        def run(x):
            x = x.clone().requires_grad_()
            y = f(x)
            return y.detach(), torch.autograd.grad(y, x)[0]
        return run

    with pytest.raises(ExerciseError, match="the gradient of your result w.r.t. x: "):
        check_function(lambda x: (x.detach() ** 2).sum() + 0 * x.sum(), exercise="square",
                       reference=lambda x: (x**2).sum(), probe=probe,
                       cases=[Case((torch.tensor([1.0, 2.0]),))],
                       output_names=("your result", "the gradient of your result w.r.t. x"))


def test_an_error_gets_a_gloss_in_plain_words():
    with pytest.raises(ExerciseError, match="matrix product of mismatched shapes"):
        check(lambda x: x @ x)


def test_spec_of_records_a_checker_without_running_it(capsys):
    spec = spec_of(check)
    assert spec.exercise == "softmax" and spec.reference is reference and len(spec.cases) == 3
    assert capsys.readouterr().out == ""
    assert spec.check(reference)


def test_generic_wrong_answers_are_refused_or_skipped_with_a_reason():
    kinds = {w.kind: w for w in generic_wrong_answers(spec_of(check))}
    assert "float where bool" not in kinds and kinds["int where float"].fn is not None
    naive = kinds.pop("softmax without max-subtraction")
    for wrong in kinds.values():
        if wrong.fn is not None:
            with pytest.raises(ExerciseError, match=wrong.message):
                check(wrong.fn)
    # this checker's scores never reach exp's overflow: the generic answer shows it
    assert check(naive.fn).passed
    large = CASES + [Case((torch.tensor([[300.0, 0.0, -5.0]]),), label="scores of hundreds")]
    with pytest.raises(ExerciseError, match=naive.message):
        check_function(naive.fn, exercise="softmax", reference=reference, cases=large)
    symmetric = generic_wrong_answers(CheckSpec(
        "outer", lambda v: torch.outer(v, v), [Case((torch.randn(3),))]))
    assert "equals this on every case" in {w.kind: w for w in symmetric}["transposed"].skip


# ---------------------------------------------------------------- what every checker gains


def test_a_softmax_or_a_sort_over_the_wrong_axis_is_named_without_being_declared():
    with pytest.raises(ExerciseError, match=r"This looks like: softmax over the wrong axis "
                                            r"\(dim=0\).*dim=-1 of 2 axes"):
        check_function(lambda x: torch.softmax(x, dim=0), exercise="softmax",
                       reference=reference, cases=CASES)
    with pytest.raises(ExerciseError, match=r"This looks like: log_softmax over the wrong axis"):
        check_function(lambda x: x.log_softmax(0), exercise="log-softmax",
                       reference=lambda x: torch.log_softmax(x, -1), cases=CASES)
    with pytest.raises(ExerciseError, match=r"This looks like: argsort over the wrong axis"):
        check_function(lambda x: x.argsort(0), exercise="ranks",
                       reference=lambda x: torch.argsort(x), cases=CASES)


def test_an_exp_without_the_maximum_is_named_where_the_scores_overflow():
    large = CASES + [Case((torch.tensor([[300.0, 0.0, -5.0, 1.0]]),), label="hundreds")]
    with pytest.raises(ExerciseError, match=r"nan at.*\n.*This looks like: exp without "
                                            r"subtracting the maximum"):
        check_function(lambda x: x.exp() / x.exp().sum(-1, keepdim=True), exercise="softmax",
                       reference=reference, cases=large)


def test_a_mistake_with_nan_where_it_gives_0_is_named_with_a_note_on_the_minus_inf_fill():
    def right(x, keep):
        return torch.softmax(x.masked_fill(~keep, -1e9), -1) * keep

    keep = torch.tensor([[True, True, False], [False, False, False]])
    cases = [Case((torch.randn(2, 3, generator=torch.Generator().manual_seed(i)), keep))
             for i in range(3)]
    forgot = Mistake("no mask", "mask it.", wrong=lambda x, k: torch.softmax(x, -1) * k)
    with pytest.raises(ExerciseError, match=r"This looks like: no mask\. mask it\. Besides, "
                                            r"your answer has nan where this mistake gives 0"):
        check_function(lambda x, k: torch.softmax(x.masked_fill(~k.any(-1, keepdim=True),
                                                                -math.inf), -1) * k,
                       exercise="masked", reference=right, cases=cases, mistakes=[forgot])


def test_a_token_list_changed_in_place_is_refused():
    def first_word(sentences):
        return sentences[0][0]

    def lower_in_place(sentences):
        sentences[0][0] = sentences[0][0].lower()
        return sentences[0][0].upper()

    cases = [Case(([["The", "cat"], ["a"]],)), Case(([["Dog"]],)), Case(([["x", "y"]],))]
    with pytest.raises(ExerciseError, match="changed its input `sentences` in place"):
        check_function(lower_in_place, exercise="first", reference=first_word, cases=cases)


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")
def test_a_loss_turned_into_a_number_or_detached_is_refused_with_the_gradient_named():
    def loss(x):
        return (x ** 2).mean()

    cases = [Case((torch.randn(4, generator=torch.Generator().manual_seed(i))
                   .requires_grad_(),)) for i in range(3)]
    for answer in (lambda x: float(loss(x)), lambda x: loss(x).item(),
                   lambda x: loss(x).detach(), lambda x: torch.tensor(loss(x).item())):
        with pytest.raises(ExerciseError, match="carries a gradient"):
            check_function(answer, exercise="loss", reference=loss, cases=cases)
    assert check_function(loss, exercise="loss", reference=loss, cases=cases)
    with pytest.raises(ExerciseError, match="you have"):  # a gradient, but a wrong value
        check_function(lambda x: (x ** 2).sum(), exercise="loss", reference=loss, cases=cases)


def test_transposed_is_said_only_when_every_case_agrees():
    def back(T, S):  # look-back band of 2: j in (p - 2, p], p = S - T + i
        p = torch.arange(T)[:, None] + S - T
        j = torch.arange(S)[None, :]
        return (j <= p) & (j > p - 2)

    def ahead(T, S):
        p = torch.arange(T)[:, None] + S - T
        j = torch.arange(S)[None, :]
        return (j >= p) & (j < p + 2)

    square = [Case((4, 4)), Case((3, 3)), Case((5, 5))]
    with pytest.raises(ExerciseError, match="your mask is the answer transposed"):
        check_function(ahead, exercise="band", reference=back, cases=square)
    with pytest.raises(ExerciseError) as info:
        check_function(ahead, exercise="band", reference=back, cases=square + [Case((2, 5))])
    assert "transposed" not in str(info.value)


def test_a_recogniser_of_a_symptom_everywhere_must_fire_on_every_case():
    stuck = Mistake("stuck at 0", "move.", detect=lambda got, exp, case: got == 0,
                    everywhere=True)
    cases = [Case((float(i),)) for i in (1, 2, 3)]
    with pytest.raises(ExerciseError, match="This looks like: stuck at 0"):
        check_function(lambda x: 0.0, exercise="id", reference=lambda x: x, cases=cases,
                       mistakes=[stuck])
    with pytest.raises(ExerciseError) as info:
        check_function(lambda x: 0.0 if x == 3 else x, exercise="id", reference=lambda x: x,
                       cases=cases, mistakes=[stuck])
    assert "This looks like" not in str(info.value)
