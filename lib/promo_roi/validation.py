"""Typed input errors and DataFrame validators that name what is wrong."""

from __future__ import annotations

from typing import Iterable

from pyspark.sql import DataFrame
from pyspark.sql.types import (
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructType,
    TimestampNTZType,
    TimestampType,
)


class InputError(ValueError):
    """Input data cannot be used as it is; the message names the table and column."""


class MissingTableError(InputError):
    pass


class MissingColumnError(InputError):
    pass


class WrongTypeError(InputError):
    pass


class QuarantineThresholdError(InputError):
    """Too large a share of a table's rows broke a data-quality rule."""


class VolumeError(InputError):
    """A source table is empty, or holds far fewer rows than the previous ingest read."""


class ReconciliationError(RuntimeError):
    """Rows read did not equal rows written plus rows quarantined."""


_INTEGRAL = (ByteType, ShortType, IntegerType, LongType)
_NUMERIC = _INTEGRAL + (FloatType, DoubleType, DecimalType)
_TEMPORAL = (TimestampType, TimestampNTZType, DateType)

# Source types that safely cast to each canonical type.
_ACCEPTED: dict[type, tuple[type, ...]] = {
    LongType: _INTEGRAL,
    IntegerType: _INTEGRAL,
    DoubleType: _NUMERIC,
    TimestampType: _TEMPORAL,
    DateType: _TEMPORAL,
    StringType: (StringType,),
}


def castable(source: DataType, target: DataType) -> bool:
    return isinstance(source, _ACCEPTED.get(type(target), (type(target),)))


def validate_presence_of_columns(df: DataFrame, required: Iterable[str], table: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise MissingColumnError(
            f"{table}: missing column(s) {', '.join(missing)}; found {', '.join(df.columns)}"
        )


def validate_schema(df: DataFrame, expected: StructType, table: str) -> None:
    """Every expected column present with a type that casts safely to the expected one."""
    validate_presence_of_columns(df, [f.name for f in expected.fields], table)
    actual = {f.name: f.dataType for f in df.schema.fields}
    wrong = [
        f"{f.name} is {actual[f.name].simpleString()}, expected {f.dataType.simpleString()}"
        for f in expected.fields
        if not castable(actual[f.name], f.dataType)
    ]
    if wrong:
        raise WrongTypeError(f"{table}: wrong type: {'; '.join(wrong)}")
