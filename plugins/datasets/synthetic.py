"""synthetic: generated interactions of any size with a planted collaborative and text signal.

Each user and item has latent factors (a signal matrix factorisation can learn) and each
item a genre whose keyword is in its title ("The Silent Dragon Legacy (1994)": fantasy);
each user has a taste for every genre, so the titles in a user's history tell a language
model what the user likes. score = <p_u, q_i> + taste[u, genre(i)] + quality(i) + noise;
ratings 1-5 are score quantiles, label = rating > 3 (about 55% positives). Users and items
are drawn with a long-tailed popularity, (user, item) pairs are unique, timestamps are
uniform over 2021 (UTC); train = January-October, valid = November, test = December.
``valid_small`` = 50% of valid (seed 2023).

``source`` carries the generation options: ``rows=20000,users=0,items=0,seed=0,history=auto``
(users/items 0 = scaled from rows: rows/40 users, rows/60 items, at least sqrt(2 rows); history=auto writes the
``history`` column unless the histories hold more than 10M ids, yes/no force it).
Generation is vectorised: 4M rows take a few seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from collm_bench import DatasetSpec, UserError, hookimpl
from collm_bench.api.components import option, parse_options
from collm_bench.data.format import write_prepared

from collm_bench_plugins.datasets.common import canonical_layout, source_options

if TYPE_CHECKING:
    import pandas as pd

NAME = "synthetic"
HISTORY_LIMIT = 10_000_000
YEAR_START = 1609459200  # 2021-01-01T00:00:00Z
DAY = 86_400
MONTH_STARTS = np.array(["2021-11-01", "2021-12-01"], dtype="datetime64[s]").astype(np.int64)
LATENT_DIM = 8
GENRES = {
    "sci-fi": ("Space", "Galaxy", "Robot"),
    "romance": ("Love", "Heart", "Wedding"),
    "horror": ("Ghost", "Zombie", "Haunting"),
    "western": ("Outlaw", "Frontier", "Sheriff"),
    "crime": ("Heist", "Detective", "Gangster"),
    "fantasy": ("Dragon", "Wizard", "Kingdom"),
    "war": ("Battle", "Soldier", "Frontline"),
    "comedy": ("Party", "Prank", "Roommate"),
    "sports": ("Champion", "Stadium", "Rookie"),
    "music": ("Melody", "Band", "Concert"),
    "adventure": ("Treasure", "Jungle", "Voyage"),
    "family": ("Puppy", "Holiday", "Grandma"),
}
ADJECTIVES = ("Silent", "Crimson", "Last", "Golden", "Broken", "Hidden", "Wild", "Lost", "Dark",
              "Bright", "Frozen", "Secret", "Endless", "Little", "Final", "Burning", "Distant",
              "Lucky", "Electric", "Quiet", "Savage", "Gentle", "Midnight", "Restless")
NOUNS = ("Legacy", "Return", "Road", "Night", "Promise", "Game", "Summer", "Story", "Code",
         "Journey", "Letter", "Shadow", "Island", "Edge", "Dream", "Affair", "Empire", "Ride",
         "Secret", "Line", "Circle", "Hour", "Season", "Escape")
RATING_QUANTILES = (0.08, 0.20, 0.45, 0.75)  # rating > 3 for the top 55%
DESCRIPTION = ("Generated interactions with a planted collaborative signal (latent factors) and "
               "text signal (genre words in titles vs. user taste); any size. --source takes "
               "options: rows=20000,users=0,items=0,seed=0,history=auto (0 = scaled from rows).")


@dataclass(frozen=True)
class SyntheticOptions:
    """What ``--source`` may set (0 users or items: scaled from rows)."""

    # at most 100 million rows: about 10 GB in memory (1e12 ended in a MemoryError of 124 GiB)
    rows: int = option(20_000, ge=1, le=100_000_000, help="interactions generated")
    users: int = option(0, ge=0, le=100_000_000, help="users (0: scaled from rows)")
    items: int = option(0, ge=0, le=100_000_000, help="items (0: scaled from rows)")
    seed: int = option(0, ge=0, help="generator seed")
    history: str = option("auto", choices=("auto", "yes", "no", "1", "0", "true", "false"),
                          help="auto: derived up to HISTORY_LIMIT rows; yes; no")


@hookimpl
def register_datasets(register):
    register(DatasetSpec(name=NAME, prepare=prepare, description=DESCRIPTION, protocol="1"))


def prepare(target: Path, source: str | None) -> None:
    opts = parse_options(SyntheticOptions, source_options(source, owner=NAME), owner=NAME)
    history = opts.history.lower()
    frame, items = generate_synthetic(opts.rows, opts.users or None, opts.items or None, opts.seed)
    frame = canonical_layout(frame, valid_small_frac=0.5, history=history not in ("no", "0", "false"),
                             max_history_items=HISTORY_LIMIT if history == "auto" else None)
    users, items_count = default_sizes(opts.rows, opts.users or None, opts.items or None)
    options = {"rows": opts.rows, "users": users, "items": items_count, "seed": opts.seed}
    protocol = {
        "generator": "collm_bench_plugins.datasets.synthetic.generate_synthetic",
        "options": options,
        "label": "1 if rating > 3 else 0 (ratings are score quantiles)",
        "split": "by month of 2021 (UTC): train January-October, valid November, test December",
        "valid_small": "50% sample of valid: DataFrame.sample(frac=0.5, random_state=2023)",
    }
    write_prepared(target, frame, items, name=NAME, protocol=protocol, item_noun="movie",
                   description=f"synthetic interactions ({', '.join(f'{k}={v}' for k, v in options.items())})")


def default_sizes(rows: int, users: int | None, items: int | None) -> tuple[int, int]:
    """rows/40 users and rows/60 items, and at least sqrt(2 rows) of each (room for the pairs)."""
    floor = math.ceil(math.sqrt(2 * max(rows, 1)))
    return (users or max(rows // 40, floor)), (items or max(rows // 60, floor))


def generate_synthetic(rows: int = 20_000, users: int | None = None, items: int | None = None,
                       seed: int = 0) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """(interactions, items): ``user, item, rating, label, timestamp, split`` and ``item, title``.

    Rows come in generation order (not sorted); ids are 1..users and 1..items.
    """
    import pandas as pd

    users, items = default_sizes(rows, users, items)
    if rows < 1 or users < 1 or items < 1:
        raise UserError(f"{NAME}: rows, users and items must be positive (got {rows}, {users}, {items})")
    if rows > users * items // 2:
        raise UserError(f"{NAME}: {rows} rows need more users x items than {users} x {items} "
                        f"(at most half of all pairs can be drawn)")
    rng = np.random.default_rng(seed)
    genres = list(GENRES)
    item_genre = rng.integers(0, len(genres), items)
    user_factor = rng.normal(0.0, 1.0, (users, LATENT_DIM)).astype(np.float32)
    item_factor = rng.normal(0.0, 1.0, (items, LATENT_DIM)).astype(np.float32)
    taste = rng.normal(0.0, 1.0, (users, len(genres))).astype(np.float32)
    quality = rng.normal(0.0, 0.5, items).astype(np.float32)

    u, i = _draw_pairs(rng, rows, users, items)
    score = np.einsum("ij,ij->i", user_factor[u], item_factor[i]) / math.sqrt(LATENT_DIM)
    score += taste[u, item_genre[i]] + quality[i]
    score += rng.normal(0.0, 0.6, len(u)).astype(np.float32)
    cuts = np.quantile(score, RATING_QUANTILES)
    rating = (1 + np.searchsorted(cuts, score, side="right")).astype(np.int64)
    timestamp = YEAR_START + rng.integers(0, 365 * DAY, len(u))
    split = np.array(["train", "valid", "test"])[np.searchsorted(MONTH_STARTS, timestamp, side="right")]
    frame = pd.DataFrame({
        "user": u + 1, "item": i + 1, "rating": rating, "label": (rating > 3).astype(np.int8),
        "timestamp": timestamp, "split": split,
    })
    items_frame = pd.DataFrame({"item": np.arange(1, items + 1), "title": _titles(rng, item_genre)})
    return frame, items_frame


def _popularity(rng: np.random.Generator, n: int, exponent: float = 0.8) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    weights = rng.permutation(weights)
    return weights / weights.sum()


def _draw_pairs(rng: np.random.Generator, rows: int, users: int, items: int) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` distinct (user, item) pairs drawn with long-tailed popularity."""
    user_p, item_p = _popularity(rng, users), _popularity(rng, items)
    codes = np.empty(0, dtype=np.int64)
    for _ in range(20):
        need = rows - len(codes)
        if need <= 0:
            break
        extra = int(need * 1.3) + 16
        drawn = rng.choice(users, extra, p=user_p).astype(np.int64) * items + rng.choice(items, extra, p=item_p)
        merged = np.concatenate([codes, drawn])
        _, first = np.unique(merged, return_index=True)
        codes = merged[np.sort(first)]
    if len(codes) < rows:  # a very skewed draw over few pairs: fill uniformly from the rest
        rest = np.setdiff1d(np.arange(users * items, dtype=np.int64), codes)
        codes = np.concatenate([codes, rng.choice(rest, rows - len(codes), replace=False)])
    codes = codes[:rows]
    return codes // items, codes % items


def _titles(rng: np.random.Generator, item_genre: np.ndarray) -> list[str]:
    n = len(item_genre)
    words = np.array([GENRES[g] for g in GENRES])  # [genres, 3]
    keyword = words[item_genre, rng.integers(0, words.shape[1], n)]
    adjective = np.array(ADJECTIVES)[rng.integers(0, len(ADJECTIVES), n)]
    noun = np.array(NOUNS)[rng.integers(0, len(NOUNS), n)]
    year = rng.integers(1950, 2021, n)
    return [f"The {a} {k} {o} ({y})" for a, k, o, y in zip(adjective.tolist(), keyword.tolist(),
                                                          noun.tolist(), year.tolist())]
