"""The test sample (docs/protocol.md, "The test sample"): rows drawn within every (user, label)
cell, each row in with the same probability, fixed by the dataset alone."""
import numpy as np

from collm_bench.api.methods import evaluation_rows


class FakeData:
    """40 test users with 10 rows each (6 liked, 4 not); only users 0-3 have warm rows (all 10
    warm). Four train rows first, so that test rows are not the first indices."""

    def __init__(self, per_user=10):
        test_users = np.repeat(np.arange(40), per_user)
        self.user = np.r_[np.zeros(4, dtype=int), test_users]
        self.label = np.r_[np.ones(4, dtype=int), np.tile((np.arange(per_user) < 0.6 * per_user).astype(int), 40)]
        self.split = np.array(["train"] * 4 + ["test"] * len(test_users))
        self.subset = np.r_[["cold"] * 4, np.where(test_users < 4, "warm", "cold")]

    def rows(self, split):
        return np.flatnonzero(self.split == split)


def test_a_fraction_that_divides_every_cell_takes_it_from_each():
    # 100 of 400 rows: a quarter of each user's 6 liked and 4 other rows, 1.5 and 1: whole parts
    # 1 and 1, the half row of the liked cell by a coin
    data = FakeData()
    rows, info = evaluation_rows(data, 100)
    assert info["sampled"] and info["sample"]["fraction"] == 0.25
    for user in range(40):
        mine = rows[data.user[rows] == user] if user else rows[(data.user[rows] == 0) & (rows >= 4)]
        liked = int(data.label[mine].sum())
        assert liked in (1, 2) and len(mine) - liked == 1
    assert info["sample"]["users"] == info["sample"]["of_users"] == 40
    assert info["sample"]["warm_users"] == 4 and info["sample"]["cold_users"] == 36
    assert info["sample"]["warm_rows"] == int((data.subset[rows] == "warm").sum())
    assert np.all(data.split[rows] == "test") and np.all(np.diff(rows) > 0)   # test rows, in file order


def test_the_sample_is_fixed_by_the_dataset_and_its_rows_are_its_identity():
    data = FakeData()
    rows, info = evaluation_rows(data, 100)
    again, same = evaluation_rows(data, 100)
    assert np.array_equal(rows, again) and same == info
    other, other_info = evaluation_rows(data, 100, seed=7)
    assert not np.array_equal(rows, other)
    assert other_info["sample"]["rows_sha256"] != info["sample"]["rows_sha256"]


def test_every_row_is_in_with_the_same_probability():
    # 3 rows per user (2 liked, 1 not) and a fraction of 0.3: every cell rounds by its coin, and
    # over many seeds each row's share of draws is 0.3 (binomial sd over 2,000 draws: 0.010)
    data = FakeData(per_user=3)
    test = data.rows("test")
    hits = np.zeros(len(data.user))
    for seed in range(2000):
        rows, _ = evaluation_rows(data, 36, seed=seed)
        hits[rows] += 1
    share = hits[test] / 2000
    assert np.all(np.abs(share - 0.3) < 0.05), share.round(3)
    assert abs(share.mean() - 0.3) < 0.005


def test_no_sample_when_asked_for_as_many_rows_as_there_are():
    rows, info = evaluation_rows(FakeData(), 400)
    assert len(rows) == 400 and not info["sampled"] and "sample" not in info


def test_a_sample_without_both_labels_is_refused():
    import pytest

    from collm_bench.errors import UserError

    with pytest.raises(UserError, match="not rows of both labels: ask for more rows"):
        evaluation_rows(FakeData(), 1)
