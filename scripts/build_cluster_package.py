"""Builds what a cluster needs to run the promo-roi jobs: `make package`.

    python scripts/build_cluster_package.py [--out dist]

writes ``dist/promo-roi-<version>/``:

* ``promo_roi-<version>.zip``: the ``promo_roi`` package with the conf/ it was
  built from inside it (``promo_roi/conf/``), for ``spark-submit --py-files``
  (Spark puts .py/.zip/.egg files on the driver's and every executor's Python
  path; it does not install wheels). Pure Python; the third-party libraries
  (pyspark, torch, ...) come from the cluster's Python environment, e.g. a
  packed one passed with ``--archives`` (docs/cluster.md, "Submitting to a cluster").
* ``jobs/``: the job files, the applications spark-submit runs.
* ``conf/``: a copy of the configuration, to edit and pass with ``--conf-dir``.
* ``requirements.lock``: the pinned dependency closure to build that environment.
* ``spark-submit-packages.txt``: the ``--packages`` coordinates per profile.

The zip is reproducible: entries sorted, timestamps fixed, no bytecode, so
the same checkout always gives the same bytes (and the same checksum in
``SHA256SUMS``). Rebuilding replaces the directory atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "lib" / "promo_roi"
# 1980-01-01, the earliest time a zip entry can hold: a fixed stamp for reproducible bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def project_version() -> str:
    with (REPO / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["project"]["version"]


def _package_files() -> list[tuple[str, Path]]:
    """(name in the zip, file) for the package's sources and its default conf/."""
    files = [
        (f"promo_roi/{path.relative_to(PACKAGE).as_posix()}", path)
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}
    ]
    if any(name.startswith("promo_roi/conf/") for name, _ in files):
        raise SystemExit(f"{PACKAGE / 'conf'} exists in the source tree; the build owns promo_roi/conf/")
    files += [(f"promo_roi/conf/{path.name}", path) for path in sorted((REPO / "conf").glob("*.yaml"))]
    return sorted(files)


def write_zip(target: Path) -> int:
    """The package zip at ``target``; returns the number of entries."""
    files = _package_files()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return len(files)


# conf/ files that are not configuration profiles: the base every profile extends, and the
# benchmark scenarios (promo_roi.synthetic) that jobs/simulate.py reads.
NOT_PROFILES = ("base.yaml", "scenarios.yaml")


def packages_by_profile() -> dict[str, str]:
    """spark.jvm_packages of each profile (base.yaml unless the profile overrides it)."""
    base = yaml.safe_load((REPO / "conf" / "base.yaml").read_text())
    out = {}
    for profile in sorted((REPO / "conf").glob("*.yaml")):
        if profile.name in NOT_PROFILES:
            continue
        tree = yaml.safe_load(profile.read_text()) or {}
        packages = (tree.get("spark") or {}).get("jvm_packages") or base["spark"]["jvm_packages"]
        out[profile.stem] = ",".join(packages)
    return out


def build(out: Path) -> Path:
    version = project_version()
    final = out / f"promo-roi-{version}"
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".promo-roi-{version}-", dir=out))
    staging.chmod(0o755)  # mkdtemp makes it private; the package is meant to be shared
    try:
        entries = write_zip(staging / f"promo_roi-{version}.zip")
        shutil.copytree(REPO / "jobs", staging / "jobs", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copytree(REPO / "conf", staging / "conf")
        shutil.copy2(REPO / "requirements.lock", staging / "requirements.lock")
        (staging / "spark-submit-packages.txt").write_text(
            "".join(f"{profile}\t{coords}\n" for profile, coords in packages_by_profile().items())
        )
        sums = []
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            sums.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(staging).as_posix()}\n")
        (staging / "SHA256SUMS").write_text("".join(sums))
        # Replace the previous build only once the new one is complete.
        if final.exists():
            old = final.with_name(final.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            staging.rename(final)
            shutil.rmtree(old)
        else:
            staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"built {final} ({entries} files in promo_roi-{version}.zip)")
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the promo-roi cluster package.")
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="output directory (default: dist/)")
    args = parser.parse_args(argv)
    build(args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
