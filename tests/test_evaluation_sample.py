import numpy as np

from collm_bench.api.methods import evaluation_rows


class FakeData:
    """40 test users with 10 rows each; only users 0-3 have warm rows (all 10 warm)."""

    def __init__(self):
        self.user = np.repeat(np.arange(40), 10)
        self.split = np.array(["test"] * 400)
        self.subset = np.where(self.user < 4, "warm", "cold")

    def rows(self, split):
        return np.flatnonzero(self.split == split)


def test_sample_is_whole_users_stratified_and_fixed():
    data = FakeData()
    rows, info = evaluation_rows(data, 100)
    users = np.unique(data.user[rows])
    assert all((data.user[rows] == u).sum() == 10 for u in users)  # whole users
    # warm users hold 10% of the rows: the sample's warm stratum gets ceil(100 * 0.1) = 10 rows
    assert info["sample"]["warm_rows"] == 10 and len(rows) >= 100
    again, _ = evaluation_rows(data, 100)
    assert np.array_equal(rows, again)
    assert np.all(np.diff(rows) > 0)  # file order


def test_no_sample_when_asked_for_more_than_there_is():
    rows, info = evaluation_rows(FakeData(), 1000)
    assert len(rows) == 400 and not info["sampled"]
