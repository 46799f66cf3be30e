"""The validation edge: every public entry point checks its arguments by their declared types.

``checked`` wraps a function so that, before its body runs, each argument is held against its
annotation: ids must be ``uuid.UUID``, flags ``bool``, whole numbers ``int`` (never ``bool``),
numbers finite, text a ``str`` that can be sent (valid Unicode, no NUL, at most 10,000
characters), enums a member or a string, literals one of their values, lists lists of their item
type, and so on. A mismatch is ``ValidationError(parameter, rule)``, raised before anything is
sent. The body then applies the rules the type cannot say (an address, a length, a range).

Every public method of every repository is wrapped when its class is made (``Repository``), so a
new method is covered by writing its annotations; ``Database`` and the service functions apply
``checked`` by hand. Annotations are read on the first call, when every name they use exists.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, TypeVar, Union

from shared_db import validation as check
from shared_db.errors import ValidationError
from shared_db.tracing import call as trace_call
from shared_db.tracing import dropped as trace_dropped
from shared_db.tracing import state as tracing

F = TypeVar("F", bound=Callable[..., Any])
Check = Callable[[str, object], None]


def _type_name(kind: object) -> str:
    return getattr(kind, "__name__", str(kind))


def _instance(kind: type[Any]) -> Check:
    def run(field: str, value: object) -> None:
        if not isinstance(value, kind):
            raise ValidationError(field, f"must be a {_type_name(kind)}, "
                                  f"got {type(value).__name__}")
    return run


def _integer(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an int, got {type(value).__name__}")


def _number(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, f"must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(field, f"must be a finite number, got {value}")


def _decimal(field: str, value: object) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationError(field, f"must be a finite Decimal, got {check.shown(value)}")


def _text(field: str, value: object) -> None:
    check.text(field, value, required=False)


def _none(field: str, value: object) -> None:
    if value is not None:
        raise ValidationError(field, f"must be None, got {type(value).__name__}")


def _literal(options: tuple[Any, ...]) -> Check:
    def run(field: str, value: object) -> None:
        # type() as well: 1 == True, and an int must not pass for a bool option.
        if not any(type(value) is type(o) and value == o for o in options):
            raise ValidationError(field, f"must be one of {', '.join(map(str, options))}, "
                                  f"got {check.shown(value)}")
    return run


def _items(item: Check | None) -> Check:
    def run(field: str, value: object) -> None:
        items = check.sequence(field, value)
        if len(items) > check.MAX_TEXT:
            raise ValidationError(field, f"must hold at most {check.MAX_TEXT} items, "
                                  f"got {len(items)}")
        if item is not None:
            for index, one in enumerate(items):
                item(f"{field}[{index}]", one)
    return run


def _iterable(field: str, value: object) -> None:
    # The items are checked by the body as it reads them: a generator read here would be spent.
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ValidationError(field, f"must be an iterable of items, got {type(value).__name__}")


def _callable(field: str, value: object) -> None:
    if not callable(value):
        raise ValidationError(field, f"must be callable, got {type(value).__name__}")


def _union(members: list[tuple[object, Check | None]]) -> Check | None:
    if any(c is None for _, c in members):
        return None

    def run(field: str, value: object) -> None:
        failures: list[ValidationError] = []
        for _, member_check in members:
            try:
                member_check(field, value)  # type: ignore[misc]
                return
            except ValidationError as failure:
                failures.append(failure)
        # The rule of the member of the value's own type says most (a str with a NUL byte).
        for (kind, _), refusal in zip(members, failures, strict=True):
            if _of_type(kind, value):
                raise refusal
        names = " or ".join(_word(k) for k, _ in members)
        raise ValidationError(field, f"must be {names}, got {type(value).__name__}")
    return run


def _of_type(kind: object, value: object) -> bool:
    """Is ``value`` of ``kind``'s type: an instance of it, or, for a ``Literal``, of one of its
    options' types (``"repeatable_read"`` for ``Literal["repeatable read", ...] | None``)?"""
    if typing.get_origin(kind) is typing.Literal:
        return any(type(value) is type(option) for option in typing.get_args(kind))
    return isinstance(kind, type) and isinstance(value, kind)


def _word(kind: object) -> str:
    if typing.get_origin(kind) is typing.Literal:
        return "one of " + ", ".join(str(option) for option in typing.get_args(kind))
    return _WORDS.get(kind, _type_name(kind))


_WORDS: dict[object, str] = {type(None): "None", float: "a number", int: "an int", str: "a str",
                             bool: "a bool", uuid.UUID: "a uuid.UUID"}


def _all(checks: list[Check | None]) -> Check:
    def run(field: str, value: object) -> None:
        for one in checks:
            if one is not None:
                one(field, value)
    return run


def _flag(field: str, value: object) -> None:
    if value is not True and value is not False:
        check.flag(field, value)


def _identifier(field: str, value: object) -> None:
    if type(value) is not uuid.UUID:
        check.identifier(field, value)


def _aware(field: str, value: object) -> None:
    check.aware(field, value)


SIMPLE: dict[object, Check | None] = {
    bool: _flag, int: _integer, float: _number, str: _text, Decimal: _decimal,
    uuid.UUID: _identifier, datetime: _aware, timedelta: _instance(timedelta),
    type(None): _none, Any: None, object: None,
}


def checker(hint: object) -> Check | None:
    """The check for values of the annotation ``hint``; None when anything goes."""
    if hint in SIMPLE:
        return SIMPLE[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:  # Annotated[str, rule]: the type's check, then each rule
        rules = getattr(hint, "__metadata__", ())
        return _all([checker(args[0]), *(rule for rule in rules if callable(rule))])
    if origin in (Union, types.UnionType):
        return _union([(arg, checker(arg)) for arg in args])
    if origin is typing.Literal:
        return _literal(args)
    if origin in (list, tuple, Sequence) and origin is not tuple:
        return _items(checker(args[0]) if args else None)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return _instance(dict)
    if origin is Iterable or hint is Iterable:
        return _iterable
    if origin is Callable or hint is Callable:
        return _callable
    if isinstance(hint, TypeVar):
        return None
    if isinstance(hint, type):
        if issubclass(hint, Enum):
            return _instance(hint)
        if getattr(hint, "_is_protocol", False) and not getattr(
                hint, "_is_runtime_protocol", False):
            return None
        return _instance(hint)
    raise TypeError(f"no check for the annotation {hint!r}")  # a new kind: add it above


class _Plan:
    """Per parameter, its check; built from the annotations on the first call."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
        self.name = fn.__qualname__
        self.positional: list[tuple[str, Check | None]] = []
        self.keyword: dict[str, Check | None] = {}
        self.required: list[tuple[int, str]] = []
        self.rest: tuple[str, Check | None] | None = None
        self.extra_keywords = False
        self.place: dict[str, int] = {}
        for index, (name, parameter) in enumerate(signature.parameters.items()):
            test = checker(hints[name]) if name in hints else None
            if parameter.kind is parameter.VAR_POSITIONAL:
                self.rest = (name, test)
            elif parameter.kind is parameter.VAR_KEYWORD:
                self.extra_keywords = True
            else:
                if parameter.kind is not parameter.KEYWORD_ONLY:
                    self.place[name] = len(self.positional)
                    self.positional.append((name, test))
                if parameter.kind is not parameter.POSITIONAL_ONLY:
                    self.keyword[name] = test
                if parameter.default is parameter.empty and name not in ("self", "cls"):
                    self.required.append((index if self.rest is None else 1 << 30, name))

    def check(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        positional = self.positional
        if len(args) > len(positional) and self.rest is None:
            raise ValidationError(f"{self.name}()", f"takes at most {len(positional)} "
                                  f"positional arguments, got {len(args)}")
        for (name, test), value in zip(positional, args, strict=False):
            if test is not None:
                test(name, value)
        if self.rest is not None and self.rest[1] is not None:
            for value in args[len(positional):]:
                self.rest[1](self.rest[0], value)
        for name, value in kwargs.items():
            found: Any = self.keyword.get(name, _UNKNOWN)
            if found is _UNKNOWN:
                if not self.extra_keywords:
                    raise ValidationError(name, f"is not a parameter of {self.name}()")
            elif self.place.get(name, len(args)) < len(args):
                raise ValidationError(name, f"is given twice to {self.name}()")
            elif found is not None:
                found(name, value)
        for index, name in self.required:
            if index >= len(args) and name not in kwargs:
                raise ValidationError(name, f"is required by {self.name}()")


_UNKNOWN = object()


def checked(fn: F) -> F:
    """``fn`` with its arguments checked by their annotations before its body runs; a
    coroutine runs in a span of its own (``Class.method``) while tracing is on."""
    plan: list[_Plan] = []

    def verify(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not plan:
            plan.append(_Plan(fn))
        plan[0].check(args, kwargs)

    if inspect.iscoroutinefunction(fn):
        name = fn.__qualname__

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            verify(args, kwargs)
            if tracing.tracer is None or trace_dropped():
                return await fn(*args, **kwargs)
            return await trace_call(name, fn, args, kwargs)
        run_async.__shared_db_checked__ = True  # type: ignore[attr-defined]
        return run_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        verify(args, kwargs)
        return fn(*args, **kwargs)
    run.__shared_db_checked__ = True  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]


def check_public_methods(cls: type[Any]) -> None:
    """Wrap every public function defined in ``cls``'s own body with ``checked``."""
    for name, attribute in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(attribute) and not getattr(
                attribute, "__shared_db_checked__", False):
            setattr(cls, name, checked(attribute))
