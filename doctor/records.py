"""``@record``: a frozen dataclass, made at a quarter of the import-time cost.

Every value the doctor passes around (findings, options, config sections, journal
entries) is a frozen dataclass. On Python 3.11, ``@dataclass(frozen=True)`` compiles
six methods per class with ``exec`` (``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__``, ``__delattr__``): about 0.4 ms a class, and a full
check defines over a hundred of them before it reads anything. ``@record`` lets
``dataclasses`` work out the fields (so the result *is* a dataclass: ``fields``,
``replace``, ``asdict`` and ``is_dataclass`` work, and type checkers treat it as
one) and compiles only ``__init__``; the other five are shared functions over the
field names. benchmarks/README.md has the figures.

Behaviour matches ``@dataclass(frozen=True)``: the same ``__init__`` signature,
defaults and factories, ``field(init=False / repr=False / compare=False /
hash=...)``, ``kw_only``, ``__post_init__``, inheritance from frozen dataclasses,
methods a class defines itself are kept, and assigning or deleting a field raises
``dataclasses.FrozenInstanceError``. ``InitVar`` pseudo-fields are not supported
(a ``TypeError`` says so). tests/test_records.py compares the two side by side.
"""

from __future__ import annotations

import dataclasses
import inspect
import keyword
import operator
import reprlib
from dataclasses import MISSING, FrozenInstanceError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see cli.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:

    def dataclass_transform(**_: object) -> object:
        return lambda decorator: decorator


_INIT_PREFIX = "_record_"  # names the generated __init__ uses besides the fields'


@dataclass_transform(
    frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field)
)
def record(cls: type[T]) -> type[T]:
    """Make *cls* a frozen dataclass, as ``@dataclass(frozen=True)`` does."""
    bases = [b for b in cls.__mro__[1:] if dataclasses.is_dataclass(b)]
    if any(not b.__dataclass_params__.frozen for b in bases):  # type: ignore[attr-defined]
        raise TypeError("cannot inherit frozen dataclass from a non-frozen one")
    if "__setattr__" in cls.__dict__ or "__delattr__" in cls.__dict__:
        raise TypeError(
            f"{cls.__qualname__}: a record cannot define __setattr__ or __delattr__"
        )
    # Fields only, no methods. With a frozen base, dataclasses insists on frozen=True
    # (and then compiles __setattr__/__delattr__ itself: subclasses are few).
    frozen_base = bool(bases)
    documented = cls.__dict__.get("__doc__")
    if not documented:
        cls.__doc__ = (
            cls.__name__
        )  # made from the signature below, once __init__ exists
    dataclasses.dataclass(cls, init=False, repr=False, eq=False, frozen=frozen_base)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    _refuse_initvars(cls, fields)
    own = cls.__dict__
    own_hash, own_eq = own.get("__hash__", MISSING), "__eq__" in own
    if "__init__" not in own:
        _attach(cls, "__init__", _init(cls, fields))
    if "__repr__" not in own:
        _attach(cls, "__repr__", _repr(tuple(f.name for f in fields if f.repr)))
    key = _key(tuple(f.name for f in fields if f.compare))
    if not own_eq:
        _attach(cls, "__eq__", _eq(key))
    # As dataclasses: a __hash__ the class wrote itself is kept, unless it is the
    # None that Python put there because the class wrote __eq__.
    if own_hash is MISSING or (own_hash is None and own_eq):
        hashed = tuple(
            f.name for f in fields if (f.compare if f.hash is None else f.hash)
        )
        _attach(cls, "__hash__", _hash(_key(hashed)))
    if not frozen_base:
        names = frozenset(f.name for f in fields)
        _attach(cls, "__setattr__", _setattr(cls, names))
        _attach(cls, "__delattr__", _delattr(cls, names))
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    params.init = params.repr = params.eq = params.frozen = True
    if not documented:  # as dataclasses: the signature, now that __init__ exists
        cls.__doc__ = cls.__name__ + str(inspect.signature(cls)).replace(" -> None", "")
    return cls


def _attach(cls: type, name: str, function: Callable[..., Any]) -> None:
    function.__qualname__ = f"{cls.__qualname__}.{name}"
    setattr(cls, name, function)


def _refuse_initvars(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> None:
    real = {f.name for f in fields}
    for name, f in cls.__dataclass_fields__.items():  # type: ignore[attr-defined]
        if name not in real and "InitVar" in str(f.type):
            raise TypeError(
                f"{cls.__qualname__}.{name}: a record has no InitVar fields"
            )


def _init(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    """Compile ``__init__`` for *fields*, in dataclasses' order and signature."""
    names = {f.name for f in fields}
    self_name = "self" if "self" not in names else _INIT_PREFIX + "self"
    env: dict[str, Any] = {
        f"{_INIT_PREFIX}set": object.__setattr__,
        f"{_INIT_PREFIX}factory": _FACTORY,
    }
    positional, keyword_only, body = [], [], []
    seen_default = False
    for f in fields:
        if f.name.startswith(_INIT_PREFIX) or keyword.iskeyword(f.name):
            raise TypeError(
                f"{cls.__qualname__}: a record cannot have a field named {f.name!r}"
            )
        if f.default is not MISSING:
            env[f"{_INIT_PREFIX}default_{f.name}"] = f.default
        if f.default_factory is not MISSING:
            env[f"{_INIT_PREFIX}make_{f.name}"] = f.default_factory
        value = _value(f)
        if f.init:
            if f.default is not MISSING:
                param = f"{f.name}={_INIT_PREFIX}default_{f.name}"
            elif f.default_factory is not MISSING:
                param = f"{f.name}={_INIT_PREFIX}factory"
            else:
                param = f.name
            if f.kw_only:
                keyword_only.append(param)
            else:
                if param == f.name and seen_default:
                    raise TypeError(
                        f"non-default argument {f.name!r} follows default argument"
                    )
                seen_default = seen_default or param != f.name
                positional.append(param)
        if value is not None:
            body.append(f"    {_INIT_PREFIX}set({self_name}, {f.name!r}, {value})")
    if hasattr(cls, "__post_init__"):
        body.append(f"    {self_name}.__post_init__()")
    params = [self_name, *positional] + (["*", *keyword_only] if keyword_only else [])
    source = (
        f"def __init__({', '.join(params)}):\n" + ("\n".join(body) or "    pass") + "\n"
    )
    namespace: dict[str, Any] = {}
    exec(source, env, namespace)
    init: Callable[..., None] = namespace["__init__"]
    init.__annotations__ = {f.name: f.type for f in fields if f.init} | {"return": None}
    return init


def _value(f: dataclasses.Field[Any]) -> str | None:
    """The expression that sets field *f* in ``__init__``, or None to leave it unset."""
    if f.init:
        if f.default_factory is not MISSING:
            return (
                f"{_INIT_PREFIX}make_{f.name}() if {f.name} is {_INIT_PREFIX}factory"
                f" else {f.name}"
            )
        return f.name
    if f.default_factory is not MISSING:
        return f"{_INIT_PREFIX}make_{f.name}()"
    if f.default is not MISSING:
        return f"{_INIT_PREFIX}default_{f.name}"
    return None


class _Factory:
    """Stands in for an argument whose default comes from a factory."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _key(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """A function giving the tuple of *names* of an instance."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    if names:
        one = operator.attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def _repr(names: tuple[str, ...]) -> Callable[[Any], str]:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__


def _eq(key: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any, object], bool]:
    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    return __eq__


def _hash(key: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(key(self))

    return __hash__


def _setattr(cls: type[Any], names: frozenset[str]) -> Callable[[Any, str, Any], None]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    return __setattr__


def _delattr(cls: type[Any], names: frozenset[str]) -> Callable[[Any, str], None]:
    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __delattr__
