"""The champion's source of truth: ``gold.model_champion``, one row per promotion, claimed by compare-and-set.

Reading the MLflow alias, comparing and moving it is a race: two trainings
finishing together can both beat the old champion and the one that sets the
alias last wins, better or not. Here a training run claims the next sequence
number only while the champion it compared against is still the latest row
(:func:`promo_roi.delta_io.compare_and_set`), and moves the alias only after
winning; the loser is not promoted and says why. The alias follows the table:
a run finding them apart (a run killed between its claim and the alias) puts
the alias back on the table's champion before comparing, and scoring serves
the table's champion whatever the alias says (:func:`serving_version`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.config import WarehouseConfig
from promo_roi.tables import MODEL_CHAMPION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChampionLedger:
    """Promotions of ``registered_model``'s ``alias`` in one warehouse; ``mlflow_run_id`` is the claiming run."""

    spark: SparkSession
    warehouse: WarehouseConfig
    registered_model: str
    alias: str
    mlflow_run_id: str

    def _latest(self):
        if not delta_io.table_exists(self.spark, MODEL_CHAMPION, self.warehouse):
            return None
        return (delta_io.read_table(self.spark, MODEL_CHAMPION, self.warehouse)
                .filter((F.col("registered_model") == self.registered_model) & (F.col("alias") == self.alias))
                .orderBy(F.col("sequence").desc()).first())

    def current(self) -> str | None:
        """The recorded champion version; None before the first recorded promotion."""
        latest = self._latest()
        return None if latest is None else latest["version"]

    def claim(self, expected: str | None, candidate: str, reason: str) -> bool:
        """Records ``candidate`` as champion if ``expected`` still is (None: no promotion recorded, or the
        one recorded is ``expected``'s); False when another run promoted a model since."""
        latest = self._latest()
        if latest is not None and latest["version"] != expected:
            return False
        row = self.spark.createDataFrame([(
            self.registered_model, self.alias, 1 if latest is None else latest["sequence"] + 1, candidate,
            expected, self.mlflow_run_id, reason, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
        )], MODEL_CHAMPION.struct)
        won = delta_io.compare_and_set(self.spark, row, MODEL_CHAMPION, self.warehouse, "mlflow_run_id")
        log.info("champion claim for %s@%s v%s (was %s): %s", self.registered_model, self.alias, candidate,
                 expected, "won" if won else "lost to a concurrent promotion")
        return won


def serving_version(spark: SparkSession, warehouse: WarehouseConfig, store, registered_model: str,
                    alias: str) -> str | None:
    """The version to score with: the latest promotion recorded in ``gold.model_champion`` for this model and
    alias, else (no promotion recorded: a champion set by hand, or before the table) the MLflow alias's in
    ``store`` (a ``promo_roi.mlflow_io.MlflowStore``). A training killed between its claim and moving the alias
    leaves the two apart; the claim was the decision, so it is served, and the alias is put back by the next
    training (``registry.promote_if_better``)."""
    alias_version = store.alias_version(registered_model, alias)
    recorded = ChampionLedger(spark, warehouse, registered_model, alias, mlflow_run_id="").current()
    if recorded is None:
        return alias_version
    if recorded != alias_version:
        log.warning("the %s alias of %s points to version %s, gold.model_champion's latest promotion is version %s "
                    "(a training stopped between its claim and the alias): serving version %s", alias,
                    registered_model, alias_version, recorded, recorded)
    return recorded
