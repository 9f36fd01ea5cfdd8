"""The fast path's column-by-column reductions agree with numpy's own (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest

from phantom_auction.simulation import kernels
from phantom_auction.simulation.results import BuiltOnRead
from phantom_auction.simulation.strategies.base import CUMSUM_LOOP_ROWS, cumsum_rows, spread


def _with_ties(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """Values on a coarse grid (many ties) with some infinities."""
    a = np.floor(rng.random((rows, cols)) * 4.0)
    a[rng.random((rows, cols)) < 0.1] = np.inf
    a[rng.random((rows, cols)) < 0.1] = -np.inf
    return a


@pytest.mark.parametrize("cols", [1, 2, 5, 8, 9, 16, 17, 40])
def test_narrow_reductions_match_numpy(cols: int) -> None:
    rng = np.random.default_rng(cols)
    a = _with_ties(rng, 500, cols)
    finite = rng.random((500, cols))
    mask = rng.random((500, cols)) < 0.4
    np.testing.assert_allclose(kernels._sum_cols(finite), finite.sum(axis=1), rtol=1e-15)
    assert np.array_equal(kernels._count_cols(mask), np.count_nonzero(mask, axis=1))
    assert np.array_equal(kernels._count_rows(mask), np.count_nonzero(mask, axis=1))
    assert np.array_equal(kernels._max_cols(a), a.max(axis=1))
    assert np.array_equal(kernels._max_cols(a, 0.0), a.max(axis=1, initial=0.0))
    assert np.array_equal(kernels._argmax_cols(a), np.argmax(a, axis=1))
    order = kernels._arrival_order(a)
    assert np.array_equal(order, np.argsort(a, axis=1, kind="stable"))
    if cols >= 2:
        top, second = kernels._top_two_cols(a)
        rest = a.copy()
        rest[np.arange(500), np.argmax(a, axis=1)] = -np.inf
        assert np.array_equal(top, a.max(axis=1))
        assert np.array_equal(second, rest.max(axis=1))


def test_count_rows_counts_wide_masks_past_a_byte() -> None:
    mask = np.ones((3, 300), dtype=bool)
    mask[1, ::2] = False
    assert kernels._count_rows(mask).tolist() == [300, 150, 300]
    assert kernels._count_rows(mask[:, :255]).tolist() == [255, 127, 255]


def test_narrow_sums_add_left_to_right() -> None:
    # The object path's order (Python's sum): 1e16 + 1 + 1 loses both ones, left to right.
    a = np.array([[1e16, 1.0, 1.0, -1e16]])
    assert kernels._sum_cols(a)[0] == sum(a[0].tolist()) == 0.0


@pytest.mark.parametrize("rows", [3, CUMSUM_LOOP_ROWS + 5])
def test_cumsum_rows_is_numpys_cumsum_bit_for_bit(rows: int) -> None:
    a = np.random.default_rng(rows).standard_normal((rows, 17)) * 1e3
    expected = np.cumsum(a, axis=1)
    got = cumsum_rows(a.copy())
    assert np.array_equal(got, expected)


def test_spread_is_broadcast_to_read_only() -> None:
    rows = np.arange(6.0)
    strided = np.arange(18.0).reshape(6, 3)[:, 1]  # not contiguous: copied first
    for values in (rows, strided, 2.5, np.float64(7.0), rows > 2.0):
        got = spread(values, (6, 4))
        want = np.broadcast_to(np.asarray(values)[..., None] if np.ndim(values) else values, (6, 4))
        assert got.shape == (6, 4) and got.dtype == want.dtype
        assert np.array_equal(got, want)
        assert not got.flags.writeable
    with pytest.raises(ValueError, match="cannot spread"):
        spread(np.arange(5.0), (6, 4))


def test_built_on_read_is_its_tuple() -> None:
    made: list[int] = []

    def build() -> tuple[int, ...]:
        made.append(1)
        return (3, 1, 2)

    lazy = BuiltOnRead(build=build, count=3)
    assert len(lazy) == 3 and not made  # the count, without building
    assert lazy == (3, 1, 2) and lazy == (3, 1, 2) and lazy == [3, 1, 2]
    assert lazy[0] == 3 and lazy[1:] == (1, 2) and list(lazy) == [3, 1, 2]
    assert hash(lazy) == hash((3, 1, 2)) and made == [1]  # built once
    import pickle

    assert pickle.loads(pickle.dumps(lazy)) == (3, 1, 2)
