"""What a table is: its schema, name, partitioning, keys and column descriptions."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import DataType, StructField, StructType

from promo_roi import column_docs


@dataclass(frozen=True)
class TableSpec:
    schema: str
    name: str
    struct: StructType
    partition_by: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        # Each column carries its catalogue description (promo_roi.column_docs) as its comment: Delta stores
        # it with the table (delta_io), so DESCRIBE, the SQL endpoint and BI tools show it.
        fields = []
        for f in self.struct.fields:
            text = column_docs.column_description(self.full_name, f.name)
            fields.append(StructField(f.name, f.dataType, f.nullable,
                                      {**f.metadata, "comment": text} if text else f.metadata))
        object.__setattr__(self, "struct", StructType(fields))

    @property
    def full_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def column_description(self, column: str) -> str | None:
        """What the column holds (promo_roi.column_docs); None for one not described."""
        return self.struct[column].metadata.get("comment")

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.struct.fields]


def table_struct(*cols: tuple[str, DataType]) -> StructType:
    return StructType([StructField(name, dtype, True) for name, dtype in cols])

