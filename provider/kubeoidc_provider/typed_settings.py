"""A small settings base: typed fields read from keyword arguments or ``<PREFIX><NAME>`` variables.

The provider's settings used pydantic-settings, which with pydantic cost the provider about 10 MiB of
its memory for a few dozen fields. Here a subclass declares annotated fields (``setting(...)`` for a
default and bounds); construction takes keyword arguments, reads the environment for the rest, converts
strings (flags and variables are strings) to the field's type, checks bounds and the subclass's rules,
and raises one :class:`SettingsError` listing every problem with the field it belongs to.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, ClassVar, Final, TypeVar, dataclass_transform, overload

__all__ = ["Problem", "Secret", "Settings", "SettingsError", "setting"]

_T = TypeVar("_T")
_MISSING: Final = object()
_TRUE: Final = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE: Final = frozenset({"0", "false", "f", "no", "n", "off"})


class Secret:
    """A value never shown: ``repr`` and ``str`` print stars, so a logged settings object keeps it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One invalid setting: ``field`` is None for a rule across fields (its message names them)."""

    field: str | None
    message: str


class SettingsError(ValueError):
    """The settings are invalid; ``problems`` says which field and why, the message names variables."""

    def __init__(self, problems: list[Problem], prefix: str) -> None:
        self.problems = problems
        self.prefix = prefix
        super().__init__("invalid settings: " + "; ".join(self.describe(problem) for problem in problems))

    def describe(self, problem: Problem) -> str:
        if problem.field is None:
            return problem.message
        return f"{self.prefix}{problem.field.upper()}: {problem.message}"


@dataclasses.dataclass(frozen=True)
class _Spec:
    """What ``setting()`` declares; replaced by the value on each instance."""

    default: Any = _MISSING
    default_factory: Callable[[], Any] | None = None
    ge: float | None = None
    le: float | None = None
    gt: float | None = None


@dataclasses.dataclass(frozen=True)
class Field:
    """A field as the CLI sees it: its name, whether it is required, and its default."""

    name: str
    required: bool
    default: Any


@overload
def setting(
    *, default: _T, ge: float | None = None, le: float | None = None, gt: float | None = None
) -> _T: ...
@overload
def setting(*, default_factory: Callable[[], _T]) -> _T: ...
def setting(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
) -> Any:
    """A field's default and, for numbers, its bounds (``ge``/``le``: inclusive, ``gt``: exclusive)."""
    return _Spec(default, default_factory, ge, le, gt)


@dataclass_transform(kw_only_default=True, field_specifiers=(setting,))
class Settings:
    """Subclass with annotated fields; set ``env_prefix``, and ``normalizers``/``check`` for rules."""

    env_prefix: ClassVar[str] = ""
    #: Per field: a function the parsed value goes through (returns it, maybe changed; raises ValueError).
    normalizers: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}
    _specs: ClassVar[dict[str, tuple[Any, _Spec]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hints = typing.get_type_hints(cls)
        cls._specs = {}
        for name, kind in hints.items():
            if (
                typing.get_origin(kind) is ClassVar
                or name.startswith("_")
                or name in Settings.__annotations__
            ):
                continue
            spec = cls.__dict__.get(name, _MISSING)
            if not isinstance(spec, _Spec):
                spec = _Spec() if spec is _MISSING else _Spec(default=spec)
            cls._specs[name] = (kind, spec)
            if name in cls.__dict__:
                delattr(cls, name)  # the instance's value, never the class's declaration, is read

    def __init__(self, **values: Any) -> None:
        unknown = sorted(set(values) - set(self._specs))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no setting {', '.join(unknown)}")
        problems: list[Problem] = []
        for name, (kind, spec) in self._specs.items():
            value = values.get(name, _MISSING)
            if value is _MISSING:
                value = os.environ.get(f"{self.env_prefix}{name.upper()}", _MISSING)
            if value is _MISSING:
                if spec.default_factory is not None:
                    value = spec.default_factory()
                elif spec.default is not _MISSING:
                    value = spec.default
                else:
                    problems.append(Problem(name, "is required"))
                    continue
            else:
                try:
                    value = _convert(value, kind)
                    _check_bounds(value, spec)
                    if name in self.normalizers:
                        value = self.normalizers[name](value)
                except ValueError as error:
                    problems.append(Problem(name, str(error)))
                    continue
            object.__setattr__(self, name, value)
        if not problems:
            try:
                self.check()
            except ValueError as error:
                problems.append(Problem(None, str(error)))
        if problems:
            raise SettingsError(problems, self.env_prefix)

    def check(self) -> None:
        """Rules across fields: raise ValueError with a message naming the fields."""

    @classmethod
    def fields(cls) -> list[Field]:
        return [
            Field(
                name,
                required=spec.default is _MISSING and spec.default_factory is None,
                default=None if spec.default is _MISSING else spec.default,  # a factory's: empty
            )
            for name, (_, spec) in cls._specs.items()
        ]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._specs)
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._specs)

    __hash__ = None  # type: ignore[assignment]  # mutable values (lists): equal, never hashed


def _convert(value: Any, kind: Any) -> Any:
    """``value`` as a ``kind``: strings (flags, variables) parsed, other values checked."""
    options = typing.get_args(kind) if isinstance(kind, UnionType) else (kind,)
    if NoneType in options:
        if value is None:
            return None
        options = tuple(option for option in options if option is not NoneType)
        if value == "" and options[0] is not str:
            return None  # an empty variable leaves an optional path or number unset
    (kind,) = options
    origin = typing.get_origin(kind)
    if origin is list:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return list(value)
        raise ValueError("must be a comma-separated list of names")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"must be true or false, not {value!r}")
    if kind is int or kind is float:
        if isinstance(value, str):
            try:
                return kind(value.strip())
            except ValueError:
                raise ValueError(
                    f"must be {'an integer' if kind is int else 'a number'}, not {value!r}"
                ) from None
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (kind is float or isinstance(value, int))
        ):
            return kind(value)
        raise ValueError(f"must be {'an integer' if kind is int else 'a number'}, not {value!r}")
    if kind is Path:
        if isinstance(value, str | Path):
            return Path(value)
        raise ValueError(f"must be a path, not {value!r}")
    if kind is Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        raise ValueError("must be a string")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"must be a string, not {value!r}")
    raise TypeError(f"settings of type {kind!r} are not supported")


def _check_bounds(value: Any, spec: _Spec) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    if spec.ge is not None and value < spec.ge:
        raise ValueError(f"must be at least {_shown(spec.ge)}, not {_shown(value)}")
    if spec.le is not None and value > spec.le:
        raise ValueError(f"must be at most {_shown(spec.le)}, not {_shown(value)}")
    if spec.gt is not None and value <= spec.gt:
        raise ValueError(f"must be more than {_shown(spec.gt)}, not {_shown(value)}")


def _shown(number: float) -> str:
    """A bound or value as written: 2592000 and 0.5, not 2.592e+06 or 0.0 for 0."""
    return str(int(number)) if float(number).is_integer() else str(number)
