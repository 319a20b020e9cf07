"""The one door to MLflow: the tracking store and model registry the configuration names.

Every MLflow call of the library goes through a :class:`MlflowStore`, built
from ``MlflowConfig`` (or, in a Spark worker, from the tracking URI the driver
passes down). It holds one client for that store, used for experiments, runs,
registered versions and aliases, and loads models by their artifact location.

Nothing sets MLflow's process-wide tracking URI for good. Two things exist only
in MLflow's fluent API: logging a pyfunc flavour with its signature, input
example and registration (``mlflow.pyfunc.log_model``), and the active run that
training logs into around it. :meth:`MlflowStore.fluent` points the fluent API
at this store for the length of a block and restores whatever was there
before, so a second store in the same process (tests, the synthetic
benchmark's scenarios, a report next to a training) never sees its runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

from promo_roi.config import MlflowConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MlflowStore:
    """The configured MLflow tracking store and its model registry (the same URI)."""

    tracking_uri: str
    artifact_root: str | None = None

    @classmethod
    def of(cls, mlflow_config: MlflowConfig) -> "MlflowStore":
        return cls(mlflow_config.tracking_uri, mlflow_config.artifact_root)

    @property
    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    # --- experiments and runs ---------------------------------------------------

    def experiment_id(self, name: str) -> str:
        """The experiment's id, created when missing (artifacts under ``artifact_root`` for a sqlite store)."""
        client = self.client
        existing = client.get_experiment_by_name(name)
        if existing is not None:
            return existing.experiment_id
        artifact_location = None
        if self.tracking_uri.startswith("sqlite:") and self.artifact_root:
            Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
            artifact_location = Path(self.artifact_root).resolve().as_uri()
        return client.create_experiment(name, artifact_location=artifact_location)

    def run_params(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.params)

    @contextlib.contextmanager
    def fluent(self) -> Iterator[None]:
        """Within the block, MLflow's fluent API (``mlflow.start_run``, ``mlflow.log_*``,
        ``mlflow.pyfunc.log_model``) writes to this store; the previous tracking URI is restored after it."""
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        # MLflow mirrors its URI into $MLFLOW_TRACKING_URI and unsets it on the way out: keep the caller's.
        environment = os.environ.get("MLFLOW_TRACKING_URI")
        try:
            with _use_tracking_uri(self.tracking_uri):
                yield
        finally:
            if environment is not None:
                os.environ["MLFLOW_TRACKING_URI"] = environment

    # --- registered versions and aliases ----------------------------------------

    def alias_version(self, registered_model: str, alias: str) -> str | None:
        """The version ``alias`` points to; None when the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(registered_model, alias).version)
        except MlflowException:
            return None

    def set_alias(self, registered_model: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(registered_model, alias, version)

    def version_run_id(self, registered_model: str, version: str) -> str:
        return self.client.get_model_version(registered_model, version).run_id

    def version_artifacts(self, registered_model: str, version: str) -> str:
        """Where the version's model files are (fixed now: an alias can move while a job runs)."""
        return self.client.get_model_version_download_uri(registered_model, version)

    def load_version(self, registered_model: str, version: str) -> Any:
        """The version as an MLflow pyfunc."""
        return self.load_model(self.version_artifacts(registered_model, version))

    def load_model(self, artifact_uri: str) -> Any:
        """A pyfunc from its artifact location. Local files load in place; any other location is downloaded
        through this store (an ``mlflow-artifacts:`` URI is served by the tracking server)."""
        import mlflow.pyfunc

        if urlparse(artifact_uri).scheme in ("", "file"):
            return mlflow.pyfunc.load_model(artifact_uri)
        from mlflow.artifacts import download_artifacts

        local = download_artifacts(artifact_uri=artifact_uri, tracking_uri=self.tracking_uri,
                                   registry_uri=self.tracking_uri)
        return mlflow.pyfunc.load_model(local)
