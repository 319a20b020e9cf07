"""The catalogue: every column of every table described once, `promo-roi describe`, "did you mean", and the
descriptions stored as Delta column comments."""

from __future__ import annotations

import dataclasses
import json

import pytest
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from promo_roi import catalogue, cli, column_docs, delta_io
from promo_roi.analyst_views import ANALYST_VIEWS
from promo_roi.config import load_config
from promo_roi.tables import BUDGET_PLAN, TableSpec, all_specs, column_slug, training_examples_spec, user_features_spec


def _undescribed(specs) -> list[str]:
    return [f"{s.full_name}.{f.name}" for s in specs for f in s.struct.fields if not s.column_description(f.name)]


def test_every_column_of_every_table_is_described():
    features = load_config(env={}).features
    specs = all_specs(features)
    assert len(specs) == 33
    assert _undescribed(specs) == []
    # Generated columns (windows and departments are configuration) are described for any setting.
    other = dataclasses.replace(features, rfm_windows_weeks=(1, 8, 52), spend_departments=("FROZEN GROCERY",))
    generated = [user_features_spec(other), training_examples_spec(other)]
    assert _undescribed(generated) == []
    department = column_slug("FROZEN GROCERY")
    assert "FROZEN GROCERY" in (user_features_spec(other).column_description(f"dept_spend_{department}") or "").upper()
    assert "52" in user_features_spec(other).column_description("spend_52w")


def test_every_column_description_fits_the_metastores_comment_column():
    """A view over a table carries its columns' comments into the Hive metastore's COLUMNS_V2.COMMENT,
    VARCHAR(256) in its Derby and PostgreSQL schemas. A longer one fails the CREATE VIEW, and the metastore
    retries it ten times two seconds apart before Spark gives up on the comment: 60-80 s of sleep in every
    publication's housekeeping (found on 2026-12-04, when four new descriptions were longer)."""
    features = load_config(env={}).features
    other = dataclasses.replace(features, rfm_windows_weeks=(1, 8, 52), spend_departments=("FROZEN GROCERY",))
    specs = [*all_specs(features), user_features_spec(other), training_examples_spec(other)]
    too_long = {f"{s.full_name}.{f.name}": len(s.column_description(f.name) or "")
                for s in specs for f in s.struct.fields if len(s.column_description(f.name) or "") > 256}
    assert too_long == {}


def test_no_description_names_a_column_its_table_does_not_have():
    specs = {s.full_name: set(s.columns) for s in all_specs(load_config(env={}).features)}
    stale = [f"{table}.{column}" for table, columns in column_docs.TABLES.items()
             for column in columns if table not in specs or column not in specs[table]]
    assert stale == []


def test_find_is_exact_and_says_what_a_misspelled_name_may_have_meant():
    specs = all_specs(load_config(env={}).features)
    assert catalogue.find("GOLD.Budget_Plan", specs, ANALYST_VIEWS) is next(s for s in specs if s.full_name == "gold.budget_plan")
    with pytest.raises(catalogue.UnknownNameError, match=r"'gold.budget_pln' \(did you mean gold.budget_plan\?\)"):
        catalogue.find("gold.budget_pln", specs, ANALYST_VIEWS)
    # The right table in the wrong schema.
    with pytest.raises(catalogue.UnknownNameError, match=r"did you mean gold.household_scores\?"):
        catalogue.find("silver.household_scores", specs, ANALYST_VIEWS)
    with pytest.raises(catalogue.UnknownNameError, match=r"unknown table or view 'nothing.like_it'; `promo-roi"):
        catalogue.find("nothing.like_it", specs, ANALYST_VIEWS)


def test_a_table_is_described_column_by_column():
    spec = TableSpec("gold", "catalogue_example", StructType([
        StructField("campaign_id", LongType()), StructField("note", StringType()), StructField("roi", DoubleType())]),
        partition_by=("campaign_id",), keys=("campaign_id",), description="An example table. Second sentence.")
    text = catalogue.describe_table(spec, "/wh/gold/catalogue_example")
    lines = text.splitlines()
    assert lines[:5] == ["gold.catalogue_example (table)", "An example table. Second sentence.",
                         "location: /wh/gold/catalogue_example", "partitioned by: campaign_id", "key: campaign_id"]
    assert lines[6].split() == ["column", "type", "description"]
    rows: dict[str, list[str]] = {}
    column = ""
    for line in lines[8:]:  # a column's line, then its description's continuation lines (indented)
        if line.startswith(" "):
            rows[column].append(line.strip())
        else:
            column, kind, first = line.split(None, 2)
            rows[column] = [kind, first]
    assert rows["campaign_id"][0] == "bigint"
    assert " ".join(rows["campaign_id"][1:]) == spec.column_description("campaign_id") != None  # noqa: E711
    assert rows["note"] == ["string", "(no description)"]
    assert rows["roi"][0] == "double"
    assert all(len(line) <= catalogue.WIDTH for line in lines[8:])


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_describe_on_the_command_line(capsys):
    code, out, _ = _cli(capsys, "describe", "gold.budget_plan", "--format", "json")
    record = json.loads(out)
    assert code == 0 and record["name"] == "gold.budget_plan" and record["key"] == ["run_date", "run_id", "campaign_id"]
    assert [c["name"] for c in record["columns"]] == BUDGET_PLAN.columns
    assert all(c["description"] for c in record["columns"])
    code, out, _ = _cli(capsys, "describe", "gold.budget_plan")
    assert code == 0 and out.startswith("gold.budget_plan (table)\n") and "excluded_by_risk" in out
    code, out, _ = _cli(capsys, "describe", "gold.latest_budget_plan")
    assert code == 0 and out.startswith("gold.latest_budget_plan (view)\n") and "reads: gold.budget_plan_published" in out
    code, out, _ = _cli(capsys, "describe")
    names = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert code == 0 and len(names) == 33 + len(ANALYST_VIEWS) and {"bronze.transactions", "silver.item_store_week"} <= set(names)
    code, _, err = _cli(capsys, "describe", "gold.budget_pln")
    assert code == 2 and "did you mean gold.budget_plan?" in err
    code, _, err = _cli(capsys, "history", "gold.budget_pln")
    assert code == 2 and "did you mean gold.budget_plan?" in err


def test_descriptions_become_delta_column_comments(spark, config_for):
    warehouse = config_for("catalogue").warehouse
    path = delta_io.table_path(warehouse, BUDGET_PLAN)

    def comments() -> dict[str, str | None]:
        return {f.name: f.metadata.get("comment") for f in spark.read.format("delta").load(path).schema.fields}

    declared = {f.name: BUDGET_PLAN.column_description(f.name) for f in BUDGET_PLAN.struct.fields}
    delta_io._create_or_migrate(spark, BUDGET_PLAN, path)
    assert comments() == declared
    # A table created before the catalogue (no comments, one column fewer) is described and migrated once.
    bare = StructType([StructField(f.name, f.dataType) for f in BUDGET_PLAN.struct.fields[:-1]])
    older = delta_io.table_path(warehouse, dataclasses.replace(BUDGET_PLAN, name="budget_plan_older"))
    spark.createDataFrame([], bare).write.format("delta").save(older)
    delta_io._create_or_migrate(spark, BUDGET_PLAN, older)
    assert {f.name: f.metadata.get("comment") for f in spark.read.format("delta").load(older).schema.fields} == declared
    version = spark.sql(f"DESCRIBE HISTORY delta.`{older}`").first()["version"]
    delta_io._create_or_migrate(spark, BUDGET_PLAN, older)
    assert spark.sql(f"DESCRIBE HISTORY delta.`{older}`").first()["version"] == version  # nothing left to do
    # Spark SQL's DESCRIBE (what the SQL endpoint and BI tools show) has them.
    described = {r.col_name: r.comment for r in spark.sql(f"DESCRIBE delta.`{path}`").collect()
                 if r.col_name in declared}
    assert described == declared
