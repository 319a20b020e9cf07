"""The tests' class path (tests/class_archive.py): the jars moved to its front change which jar no class comes from."""

from __future__ import annotations

import os
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import class_archive

# The one class file every Spark module jar carries (an empty stub the build adds to each, never loaded).
SPARK_STUB = "org/apache/spark/unused/UnusedStubClass.class"


def _classes(jar: Path) -> set[str]:
    with zipfile.ZipFile(jar) as archive:
        return {name for name in archive.namelist()
                if name.endswith(".class") and not name.startswith("META-INF/") and name != "module-info.class"}


def _package_jars() -> list[Path]:
    """The Delta jars (remembered by the run's start, else resolved by Spark's resolver, a few seconds)."""
    return class_archive._package_jars(Path(sys.prefix) / "class-archive")


def test_the_promoted_jars_share_no_class_with_another_jar_and_every_jar_stays():
    spark_home = class_archive._spark_home()
    package_jars = _package_jars()
    ordered = class_archive.ordered_class_path(spark_home, package_jars)
    listed = sorted((spark_home / "jars").glob("*.jar"))
    assert sorted(ordered) == sorted([*listed, *package_jars]), "the same jars, each once"
    promoted = [jar for jar in ordered if jar.name.startswith(class_archive.PROMOTED_JARS)]
    assert ordered[:len(promoted)] == promoted and len(promoted) >= 25
    # The rest in the JVM's own order: Spark's jars as the directory lists them, then the package jars.
    rest = [jar for jar in ordered if jar not in promoted]
    assert rest == [jar for jar in [*_listing(spark_home), *package_jars] if jar not in promoted]
    owners: dict[str, list[str]] = defaultdict(list)
    for jar in ordered:
        for name in _classes(jar):
            owners[name].append(jar.name)
    moved = {jar.name for jar in promoted}
    shared = {name: jars for name, jars in owners.items()
              if len(jars) > 1 and name != SPARK_STUB and moved & set(jars)}
    assert shared == {}, f"a promoted jar shares classes with another: {dict(list(shared.items())[:5])}"
    # The check can fail: jars that do share classes are on this class path, and none is promoted.
    assert any(len(jars) > 1 and name != SPARK_STUB for name, jars in owners.items())


def _listing(spark_home: Path) -> list[Path]:
    """Spark's jars in the order the JVM expands ``jars/*``: the directory's listing (readdir) order."""
    return [Path(entry.path) for entry in os.scandir(spark_home / "jars") if entry.name.endswith(".jar")]
