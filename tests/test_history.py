"""History rule (docs/data-format.md): rows sorted by (user, timestamp), stable over file order; a row's
history is the items its user labelled 1 in earlier rows, oldest first."""

import numpy as np

from collm_bench.data.history import derive_histories, parse_history_column

def histories(rows):
    user, item, label, ts = (np.array(col) for col in zip(*rows))
    return derive_histories(user, item, label, ts)


def test_hand_computed_histories_in_file_order():
    rows = [  # (user, item, label, timestamp), deliberately not sorted
        (2, 7, 1, 50),
        (1, 3, 1, 30),
        (1, 1, 1, 10),
        (2, 8, 0, 40),
        (1, 2, 0, 20),
        (1, 4, 1, 40),
        (2, 9, 1, 60),
    ]
    h = histories(rows)
    # user 1 by time: 1(+) 2(-) 3(+) 4(+); user 2 by time: 8(-) 7(+) 9(+)
    assert h.as_strings() == ["", "1", "", "", "1", "1 3", "7"]
    assert [list(h.row(r)) for r in range(len(rows))] == [[], [1], [], [], [1], [1, 3], [7]]
    assert list(h.lengths()) == [0, 1, 0, 0, 1, 2, 1]


def test_same_timestamp_ties_follow_file_order():
    rows = [
        (5, 10, 1, 100),
        (5, 11, 1, 100),  # same second: row 0 comes first, row 2 after
        (5, 12, 1, 100),
        (5, 13, 0, 90),
        (5, 14, 1, 100),
    ]
    assert histories(rows).as_strings() == ["", "10", "10 11", "", "10 11 12"]
    swapped = [rows[2], rows[1], rows[0], rows[3], rows[4]]
    assert histories(swapped).as_strings() == ["", "12", "12 11", "", "12 11 10"]


def test_users_do_not_share_histories_and_labels_other_than_one_are_negative():
    rows = [(1, 100, 1, 1), (2, 200, 1, 2), (1, 101, 0, 3), (2, 201, 1, 4), (1, 102, 1, 5)]
    assert histories(rows).as_strings() == ["", "", "100", "200", "100"]


def test_last_n_left_pads_with_the_most_recent_last():
    rows = [(1, i, 1, i) for i in range(1, 6)] + [(2, 9, 0, 1)]
    h = histories(rows)
    assert h.last(3).tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [0, 0, 0]]
    assert h.last(2, pad=-1, rows=np.array([4, 5])).tolist() == [[3, 4], [-1, -1]]


def test_empty_and_all_negative_inputs():
    empty = derive_histories(np.array([], dtype=int), np.array([], dtype=int), np.array([], dtype=int),
                             np.array([], dtype=int))
    assert len(empty) == 0 and empty.as_strings() == []
    negative = histories([(1, 1, 0, 1), (1, 2, 0, 2)])
    assert negative.as_strings() == ["", ""]
    assert negative.last(2).tolist() == [[0, 0], [0, 0]]


def test_parse_history_column():
    assert parse_history_column(["", "1 2 3", np.nan, "7"]) == [[], [1, 2, 3], [], [7]]


def test_reproduces_the_official_release_history_column(ml1m_collm):
    import pandas as pd

    frame = pd.read_csv(ml1m_collm / "interactions.csv.gz", dtype={"history": str}, keep_default_na=False)
    assert len(frame) == 51_623
    h = derive_histories(frame["user"].to_numpy(), frame["item"].to_numpy(), frame["label"].to_numpy(),
                         frame["timestamp"].to_numpy())
    derived = np.array(h.as_strings(), dtype=object)
    official = frame["history"].to_numpy(dtype=object)
    mismatch = np.flatnonzero(derived != official)
    assert len(mismatch) == 0, f"{len(mismatch)} rows differ, first at data row {mismatch[:1] + 1}"
