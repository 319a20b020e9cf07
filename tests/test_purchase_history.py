"""A household's purchase history as text (promo_roi/purchase_history.py): hand-worked texts on tiny inline data,
and nothing dated on or after the reference date reaches it."""

from __future__ import annotations

import datetime as dt

import pytest

from promo_roi.purchase_history import purchase_history_on
from promo_roi.tables import SOURCE_TABLES

AS_OF = dt.date(2017, 7, 1)
EARLIER = dt.date(2017, 6, 24)


def _ts(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day + "T12:00:00")


def _products(spark):
    rows = [
        (1, 0, "GROCERY", "A", "SOFT DRINKS", "", ""),
        (2, 0, "MEAT", "A", "BEEF", "", ""),
        (3, 0, "GROCERY", "A", "CHEESE", "", ""),
        (4, 0, "PRODUCE", "A", " ", "", ""),  # a blank category: its department
        (5, 0, "", "A", None, "", ""),  # neither: unknown
        (6, 0, "DELI", "A", "cheese", "", ""),  # another department's cheese: the same category
    ]
    return spark.createDataFrame(rows, SOURCE_TABLES["products"].struct)


def _lines(spark, lines: list[tuple[int, int, float, str]]):
    """(household, product, sales value, day) -> transactions rows."""
    rows = [(household, 1, k, product, 1, sales, 0.0, 0.0, 0.0, 26, _ts(day))
            for k, (household, product, sales, day) in enumerate(lines)]
    return spark.createDataFrame(rows, SOURCE_TABLES["transactions"].struct)


LINES = [
    (10, 1, 100.0, "2017-06-16"),  # before AS_OF's two weeks, inside EARLIER's
    (10, 1, 6.0, "2017-06-20"),
    (10, 2, 3.0, "2017-06-25"),
    (10, 3, 1.0, "2017-06-30"),
    (10, 6, 2.0, "2017-06-30"),  # cheese 3.0 in all: a tie with beef, ordered by name
    (10, 4, -1.0, "2017-06-22"),  # a return: produce's spend is not positive, left out
    (10, 2, 50.0, "2017-07-01"),  # on AS_OF: not yet
    (20, 5, 4.0, "2017-06-18"),
    (20, 4, 1.0, "2017-06-18"),
    (30, 1, 9.0, "2017-07-02"),  # after AS_OF only: no row
    (40, 3, -2.0, "2017-06-28"),  # a return only: no row
]


def _history(spark, lines, dates=(AS_OF, EARLIER), weeks=2, categories=2) -> list[tuple]:
    frame = purchase_history_on(_lines(spark, lines), _products(spark), list(dates), weeks, categories)
    return sorted(tuple(r) for r in frame.collect())


def test_the_text_names_the_largest_categories_by_spend_in_the_weeks_before(spark):
    assert _history(spark, LINES) == [
        (10, EARLIER, "bought in the last 2 weeks: soft drinks 100%.", 106.0, 1),
        (10, AS_OF, "bought in the last 2 weeks: soft drinks 50%, beef 25%.", 12.0, 2),
        (20, EARLIER, "bought in the last 2 weeks: unknown 80%, produce 20%.", 5.0, 2),
        (20, AS_OF, "bought in the last 2 weeks: unknown 80%, produce 20%.", 5.0, 2),
    ]


def test_every_category_when_the_limit_allows_and_a_longer_window(spark):
    rows = _history(spark, LINES, dates=[AS_OF], weeks=3, categories=10)
    # Three weeks before AS_OF start on 2017-06-10: the 100.0 of 2017-06-16 counts.
    assert rows == [
        (10, AS_OF, "bought in the last 3 weeks: soft drinks 95%, beef 3%, cheese 3%.", 112.0, 3),
        (20, AS_OF, "bought in the last 3 weeks: unknown 80%, produce 20%.", 5.0, 2),
    ]


def test_nothing_on_or_after_the_date_changes_the_text(spark):
    """Every line dated on or after AS_OF rewritten and more added: the texts as of AS_OF and before are the same."""
    future = [(h, p, s * 10 + 7, d) for h, p, s, d in LINES if d >= AS_OF.isoformat()]
    past = [line for line in LINES if line[3] < AS_OF.isoformat()]
    added = [(10, 5, 500.0, "2017-07-01"), (20, 2, 80.0, "2017-07-03"), (50, 1, 1.0, "2017-07-01")]
    assert _history(spark, past + future + added) == _history(spark, LINES)


def test_a_window_or_limit_below_one_is_refused(spark):
    with pytest.raises(ValueError, match="at least 1"):
        purchase_history_on(_lines(spark, LINES), _products(spark), [AS_OF], 0, 5)
    with pytest.raises(ValueError, match="at least 1"):
        purchase_history_on(_lines(spark, LINES), _products(spark), [AS_OF], 2, 0)
