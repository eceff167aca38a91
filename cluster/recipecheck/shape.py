"""A small strict shape language for YAML documents: every mapping names the keys it allows, so
a misspelt field (`maxReplica`, `enableInTreeAutoScaling`) is refused instead of silently ignored
the way Kubernetes drops unknown fields of a custom resource it does not prune."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Finding = tuple[str, str]  # (dotted field, what is wrong)


def child(at: str, key: str | int) -> str:
    """The dotted path of a mapping key or list index below `at`."""
    if isinstance(key, int):
        return f"{at}[{key}]"
    return f"{at}.{key}" if at else key


class Shape:
    """What a value must look like; `check` yields one finding per problem."""

    def check(self, value: Any, at: str) -> Iterator[Finding]:
        """Findings for `value` found at dotted path `at` (none when it fits)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Anything(Shape):
    """A field the CRD has but the recipes do not use: its name is known, its value unchecked."""

    def check(self, value: Any, at: str) -> Iterator[Finding]:
        """Accept any value."""
        return iter(())


@dataclass(frozen=True)
class Scalar(Shape):
    """A string, integer, number or boolean, optionally from a fixed set or with a minimum."""

    kinds: tuple[type, ...]
    choices: tuple[Any, ...] = ()
    minimum: float | None = None

    def check(self, value: Any, at: str) -> Iterator[Finding]:
        """Refuse the wrong type (booleans are not integers here), a value outside the set, or
        one below the minimum."""
        names = " or ".join(_TYPE_NAMES[k] for k in self.kinds)
        if isinstance(value, bool) and bool not in self.kinds:
            yield at, f"expected {names}, got {value!r}"
        elif not isinstance(value, self.kinds):
            yield at, f"expected {names}, got {value!r}"
        elif self.choices and value not in self.choices:
            yield at, f"expected one of {', '.join(map(str, self.choices))}, got {value!r}"
        elif self.minimum is not None and not isinstance(value, str) and value < self.minimum:
            yield at, f"must be at least {self.minimum:g}, got {value!r}"


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true/false"}

ANYTHING = Anything()
STR = Scalar((str,))
INT = Scalar((int,))
NON_NEGATIVE = Scalar((int,), minimum=0)
POSITIVE = Scalar((int,), minimum=1)
BOOL = Scalar((bool,))
NUMBER = Scalar((int, float))
QUANTITY = Scalar((str, int, float))  # Kubernetes quantities: "500m", "8Gi", 2


def one_of(*choices: str) -> Scalar:
    """A string from a fixed set (an enum of the CRD)."""
    return Scalar((str,), choices=choices)


@dataclass(frozen=True)
class ListOf(Shape):
    """A list whose items all have one shape."""

    item: Shape

    def check(self, value: Any, at: str) -> Iterator[Finding]:
        """Refuse a non-list; check each item at `at[i]`."""
        if not isinstance(value, list):
            yield at, f"expected a list, got {value!r}"
            return
        for index, item in enumerate(value):
            yield from self.item.check(item, child(at, index))


@dataclass(frozen=True)
class MapOf(Shape):
    """A mapping with free keys (labels, env-like maps) whose values share one shape."""

    value: Shape = STR

    def check(self, value: Any, at: str) -> Iterator[Finding]:
        """Refuse a non-mapping or a non-string key; check each value."""
        if not isinstance(value, dict):
            yield at, f"expected a mapping, got {value!r}"
            return
        for key, item in value.items():
            if not isinstance(key, str):
                yield child(at, str(key)), "keys must be strings"
            else:
                yield from self.value.check(item, child(at, key))


@dataclass(frozen=True)
class Obj(Shape):
    """A mapping with a closed set of keys: unknown ones are findings, naming the nearest match."""

    fields: dict[str, Shape]
    required: frozenset[str] = field(default_factory=frozenset)

    def check(self, value: Any, at: str) -> Iterator[Finding]:
        """Refuse a non-mapping, unknown keys and missing required keys; check each known key."""
        if not isinstance(value, dict):
            yield at, f"expected a mapping, got {value!r}"
            return
        for key, item in value.items():
            shape = self.fields.get(key) if isinstance(key, str) else None
            if shape is None:
                yield child(at, str(key)), unknown_key(str(key), self.fields)
            else:
                yield from shape.check(item, child(at, key))
        for key in sorted(self.required - set(value)):
            yield child(at, key), "missing (required)"


def obj(required: str = "", **fields: Shape) -> Obj:
    """An `Obj` from keyword fields; `required` lists the required keys, space-separated."""
    return Obj(dict(fields), frozenset(required.split()))


def unknown_key(key: str, known: dict[str, Any] | list[str]) -> str:
    """The finding for a key nothing defines, with the closest known key when one is near."""
    near = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    if not near:
        near = [k for k in known if k.lower() == key.lower()]
    if near:
        return f"unknown field (did you mean {near[0]!r}?)"
    return f"unknown field (expected one of: {', '.join(sorted(known))})"


def dig(document: Any, *path: str | int) -> Any:
    """The value at a key path of nested mappings/lists, or None where any step is missing."""
    for step in path:
        if isinstance(step, int) and isinstance(document, list) and -len(document) <= step < len(
                document):
            document = document[step]
        elif isinstance(step, str) and isinstance(document, dict):
            document = document.get(step)
        else:
            return None
    return document
