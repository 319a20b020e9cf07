"""Reading one configuration section strictly: known keys only, typed values, ranges checked.

A typo in a key (``planning.total_buget=10``) used to fall back to the
default without a word, ``nan`` switched a gate off (every comparison with NaN
is false) and ``training.epochs=null`` failed with a bare TypeError. Every
section of the merged tree is read through a :class:`Section`, whose typed
accessors refuse, by the key's full name and before any Spark work:

- a key the section does not declare, and a section nobody reads;
- a value of the wrong type (a bool where a number belongs, text that is not
  a number, null for a required value);
- NaN and infinities for every number (no setting means "infinite");
- a value outside the range the setting admits.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Callable, Collection, Mapping

MISSING = object()


class ConfigError(ValueError):
    """A configuration file or override is missing, malformed or inconsistent."""


def refuse_unknown(tree: Mapping[str, Any], known: Collection[str], where: str) -> None:
    """Refuses keys of ``tree`` outside ``known``, naming them and what is allowed."""
    unknown = sorted(str(k) for k in tree if k not in known)
    if unknown:
        names = ", ".join(f"{where}.{k}" if where else k for k in unknown)
        raise ConfigError(f"unknown configuration key(s) {names} (known here: {', '.join(sorted(known))})")


class Section:
    """One section of the configuration tree, read by typed accessors that name the key in every refusal."""

    def __init__(self, tree: Mapping[str, Any], name: str, known: Collection[str]) -> None:
        section = tree.get(name)
        if not isinstance(section, Mapping):
            raise ConfigError(f"configuration section {name!r} is missing or not a mapping")
        refuse_unknown(section, known, name)
        self.name = name
        self.values = section

    def key(self, key: str) -> str:
        return f"{self.name}.{key}"

    def raw(self, key: str, default: Any = MISSING) -> Any:
        if key in self.values:
            return self.values[key]
        if default is MISSING:
            raise ConfigError(f"configuration key {self.key(key)} is missing")
        return default

    def _present(self, key: str, optional: bool) -> Any:
        value = self.raw(key, None if optional else MISSING)
        if value is None and not optional:
            raise ConfigError(f"{self.key(key)} must be set, got null")
        return value

    def number(self, key: str, *, optional: bool = False, minimum: float | None = None,
               maximum: float | None = None, above: float | None = None, below: float | None = None) -> float | None:
        """A finite float within the given bounds (``minimum``/``maximum`` inclusive, ``above``/``below`` not)."""
        value = self._present(key, optional)
        if value is None:
            return None
        return check_range(to_number(value, self.key(key)), self.key(key), minimum, maximum, above, below)

    def integer(self, key: str, *, optional: bool = False, minimum: int | None = None,
                maximum: int | None = None) -> int | None:
        value = self._present(key, optional)
        if value is None:
            return None
        number = to_integer(value, self.key(key))
        check_range(number, self.key(key), minimum, maximum, None, None)
        return number

    def boolean(self, key: str) -> bool:
        value = self._present(key, False)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ConfigError(f"{self.key(key)} must be true or false, got {value!r}")

    def text(self, key: str, *, optional: bool = False, choices: Collection[str] | None = None) -> str | None:
        value = self._present(key, optional)
        if value is None:
            return None
        if isinstance(value, (Mapping, list, tuple)):
            raise ConfigError(f"{self.key(key)} must be a single value, got {value!r}")
        text = str(value)
        if choices is not None and text not in choices:
            raise ConfigError(f"{self.key(key)} must be one of {', '.join(choices)}, got {text!r}")
        return text

    def date(self, key: str) -> dt.date:
        value = self._present(key, False)
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError as exc:
            raise ConfigError(f"{self.key(key)} must be an ISO date (YYYY-MM-DD), got {value!r}") from exc

    def items(self, key: str, read: Callable[[Any, str], Any], *, nonempty: bool = True) -> tuple:
        """A list whose every item is read by ``read(value, "section.key[i]")``."""
        value = self._present(key, False)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{self.key(key)} must be a list, got {value!r}")
        if nonempty and not value:
            raise ConfigError(f"{self.key(key)} must not be empty")
        return tuple(read(item, f"{self.key(key)}[{i}]") for i, item in enumerate(value))

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.raw(key, None)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.key(key)} must be a mapping, got {value!r}")
        return value


def to_number(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} must be a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
    return number


def to_integer(value: Any, key: str) -> int:
    number = to_number(value, key)
    if number != int(number):
        raise ConfigError(f"{key} must be a whole number, got {value!r}")
    return int(number)


def to_text(value: Any, key: str) -> str:
    if value is None or isinstance(value, (Mapping, list, tuple)):
        raise ConfigError(f"{key} must be text, got {value!r}")
    return str(value)


def check_range(number: float, key: str, minimum: float | None, maximum: float | None,
                above: float | None, below: float | None) -> float:
    if minimum is not None and number < minimum:
        raise ConfigError(f"{key} must be >= {minimum:g}, got {number:g}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{key} must be <= {maximum:g}, got {number:g}")
    if above is not None and number <= above:
        raise ConfigError(f"{key} must be > {above:g}, got {number:g}")
    if below is not None and number >= below:
        raise ConfigError(f"{key} must be < {below:g}, got {number:g}")
    return number
