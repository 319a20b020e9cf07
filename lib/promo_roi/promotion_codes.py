"""The codes of an in-store promotion placement in the Complete Journey ``promotions`` table.

Each row places one product in one store for one week: where in the store it
is displayed and where in the weekly mailer it appears. The meanings are the
data's own documentation (dunnhumby, "The Complete Journey" user guide); the
lists are also the vocabulary ingest holds the rows to: a row with a code
outside them is quarantined with the column named (:mod:`promo_roi.quality`),
never read as a promotion type nobody defined.
"""

from __future__ import annotations

DISPLAY_LOCATIONS = {
    "0": "not on display",
    "1": "store front",
    "2": "store rear",
    "3": "front end cap",
    "4": "mid-aisle end cap",
    "5": "rear end cap",
    "6": "side-aisle end cap",
    "7": "in-aisle",
    "9": "secondary location display",
    "A": "in-shelf",
}

MAILER_LOCATIONS = {
    "0": "not on ad",
    "A": "interior page feature",
    "C": "interior page line item",
    "D": "front page feature",
    "F": "back page feature",
    "H": "wrap front feature",
    "J": "wrap interior coupon",
    "L": "wrap back feature",
    "P": "interior page coupon",
    "X": "free-form",
    "Z": "free on interior page",
}
