"""The task generators of attnbook.data take ``seed`` or ``generator`` by one rule: a seed
is an int >= 0 (0 by default), a generator a torch.Generator, never both; a seed s gives
the same batch as a generator seeded with s."""

import dataclasses

import pytest
import torch

from attnbook.data.lookup_task import make_lookup_batch
from attnbook.data.majority_task import make_majority_batch
from attnbook.data.marker_task import make_marker_batch
from attnbook.data.order_task import make_order_batch
from attnbook.data.recall import make_recall_batch
from attnbook.data.sorting import make_sort_batch

MAKERS = {
    "lookup": lambda **kw: make_lookup_batch(4, **kw),
    "majority": lambda **kw: make_majority_batch(4, **kw),
    "marker": lambda **kw: make_marker_batch(4, **kw),
    "order": lambda **kw: make_order_batch(4, **kw),
    "recall": lambda **kw: make_recall_batch(4, **kw),
    "sort": lambda **kw: make_sort_batch(4, **kw),
}


def _same(a, b) -> bool:
    return all(torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
               for x, y in zip(dataclasses.astuple(a), dataclasses.astuple(b), strict=True))


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
def test_seed_or_generator(make):
    assert _same(make(seed=3), make(generator=torch.Generator().manual_seed(3)))
    assert _same(make(), make(seed=0))
    assert not _same(make(seed=0), make(seed=1))
    g = torch.Generator().manual_seed(5)
    assert not _same(make(generator=g), make(generator=g))  # one stream, fresh batches


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
def test_bad_seed_or_generator_is_refused_in_words(make):
    with pytest.raises(TypeError, match="seed should be an int, got the float 1.5"):
        make(seed=1.5)
    with pytest.raises(ValueError, match="seed should be >= 0, got -1"):
        make(seed=-1)
    with pytest.raises(TypeError, match="generator should be a torch.Generator, got int"):
        make(generator=3)
    with pytest.raises(ValueError, match="give seed or generator, not both"):
        make(seed=1, generator=torch.Generator())
