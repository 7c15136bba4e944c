"""``@record``: the doctor's dataclasses, without the ``dataclasses`` module's cost.

Every value the doctor passes around (findings, options, config sections, journal
entries) is a record. On Python 3.11, ``@dataclass(frozen=True)`` compiles six
methods per class with ``exec`` (about 0.4 ms a class, and a full check defines over
a hundred before it reads anything), and importing ``dataclasses`` imports
``inspect`` (with ``ast``, ``dis`` and ``tokenize``): another 7 ms. ``@record``
compiles only ``__init__``; ``__repr__``, ``__eq__``, ``__hash__`` and the frozen
``__setattr__``/``__delattr__`` are shared functions over the field names.
benchmarks/README.md has the figures.

A record behaves as ``@dataclass(frozen=True)`` (or ``@dataclass`` with
``@mutable_record``): the same ``__init__`` signature, defaults and factories,
``field(default=, default_factory=, init=, repr=, hash=, compare=, kw_only=)``,
``__post_init__``, inheritance, and methods a class writes itself are kept.
Assigning or deleting a field of a frozen record raises
``dataclasses.FrozenInstanceError`` (this module's :class:`FrozenInstanceError`, an
AttributeError too, while ``dataclasses`` is not loaded). Use :func:`field`,
:func:`fields` and :func:`replace` from here; ``dataclasses.is_dataclass``,
``fields``, ``replace``, ``asdict`` and a ``@dataclass`` subclass work as well,
through a ``__dataclass_fields__`` made (importing ``dataclasses``) the first time
something asks. Not supported: ``InitVar``, ``KW_ONLY``, slots, ordering.
tests/test_records.py compares the two side by side.
"""

from __future__ import annotations

import abc
import operator
import re
import reprlib
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see cli.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:

    def dataclass_transform(**_: object) -> object:
        return lambda decorator: decorator


class _Missing:
    """No default: the value of ``default``/``default_factory`` when none is given."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenInstanceError(AttributeError):
    """A field of a frozen record was assigned or deleted. Once ``dataclasses`` is
    imported, :func:`record` raises ``dataclasses.FrozenInstanceError`` instead, so
    code that catches either works."""


class Field:
    """One field of a record: what :func:`field` declares, plus its name and type."""

    __slots__ = (
        "compare",
        "default",
        "default_factory",
        "hash",
        "init",
        "kw_only",
        "name",
        "repr",
        "type",
    )

    def __init__(
        self,
        default: Any,
        default_factory: Any,
        init: bool,
        repr: bool,
        hash: bool | None,
        compare: bool,
        kw_only: bool,
    ) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.type: Any = None
        self.default = default
        self.default_factory = default_factory
        self.init, self.repr, self.hash = init, repr, hash
        self.compare, self.kw_only = compare, kw_only

    def __repr__(self) -> str:
        return (
            f"Field(name={self.name!r}, type={self.type!r}, default={self.default!r})"
        )


def field(
    *,
    default: Any = MISSING,
    default_factory: Any = MISSING,
    init: bool = True,
    repr: bool = True,
    hash: bool | None = None,
    compare: bool = True,
    kw_only: bool = False,
) -> Any:
    """A field with options, as ``dataclasses.field``."""
    return Field(default, default_factory, init, repr, hash, compare, kw_only)


def fields(record_or_class: Any) -> tuple[Field, ...]:
    """The fields of a record (or its class), in ``__init__`` order."""
    found: tuple[Field, ...] | None = getattr(
        record_or_class, "__record_fields__", None
    )
    if found is None:
        raise TypeError(f"{record_or_class!r} is not a record")
    return found


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of record *obj* with *changes*, as ``dataclasses.replace``."""
    for f in fields(obj):
        if not f.init:
            if f.name in changes:
                raise ValueError(
                    f"field {f.name} is declared with init=False, it cannot be "
                    "specified with replace()"
                )
        elif f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def record(cls: type[T]) -> type[T]:
    """Make *cls* a frozen dataclass, as ``@dataclass(frozen=True)`` does."""
    return _make(cls, frozen=True)  # type: ignore[no-any-return]


@dataclass_transform(field_specifiers=(field, Field))
def mutable_record(cls: type[T]) -> type[T]:
    """Make *cls* a mutable dataclass, as ``@dataclass`` does."""
    return _make(cls, frozen=False)  # type: ignore[no-any-return]


# --- making the class ----------------------------------------------------------------

# An annotation that names ClassVar, InitVar or KW_ONLY, as a string (every module
# here has `from __future__ import annotations`) or as the object's repr.
_PSEUDO = re.compile(r"^\s*(?:[\w.]*\.)?(ClassVar|InitVar|KW_ONLY)\b")


def _make(cls: Any, frozen: bool) -> Any:
    own = cls.__dict__
    if frozen and ("__setattr__" in own or "__delattr__" in own):
        raise TypeError(
            f"{cls.__qualname__}: a record cannot define __setattr__ or __delattr__"
        )
    by_name = _inherited(cls, frozen)
    annotated = own.get("__annotations__", {})
    for name, annotation in annotated.items():
        kind = _pseudo(annotation)
        if kind == "ClassVar":
            continue
        if kind:
            raise TypeError(f"{cls.__qualname__}.{name}: a record has no {kind} fields")
        default = _field_of(own.get(name, MISSING))
        f = default if isinstance(default, Field) else field(default=default)
        f.name, f.type = name, annotation
        if f.default is not MISSING and f.default.__class__.__hash__ is None:
            raise ValueError(
                f"mutable default {type(f.default)} for field {name} is not allowed:"
                " use default_factory"
            )
        if isinstance(default, Field):  # as dataclasses: the class keeps plain defaults
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        by_name[name] = f  # a field redefined keeps its place, as in dataclasses
    for name, value in own.items():
        if isinstance(value, Field) and name not in annotated:
            raise TypeError(f"{name!r} is a field but has no type annotation")
    all_fields = tuple(by_name.values())
    cls.__record_fields__ = all_fields
    cls.__record_frozen__ = frozen
    own_hash, own_eq = own.get("__hash__", MISSING), "__eq__" in own
    if "__init__" not in own:
        _attach(cls, "__init__", _init(cls, all_fields, frozen))
    if "__repr__" not in own:
        _attach(cls, "__repr__", _repr(tuple(f.name for f in all_fields if f.repr)))
    if not own_eq:
        _attach(
            cls, "__eq__", _eq(_key(tuple(f.name for f in all_fields if f.compare)))
        )
    # As dataclasses: a __hash__ the class wrote itself is kept, unless it is the
    # None that Python put there because the class wrote __eq__. A mutable record
    # is unhashable.
    if own_hash is MISSING or (own_hash is None and own_eq):
        if frozen:
            hashed = tuple(
                f.name for f in all_fields if (f.compare if f.hash is None else f.hash)
            )
            _attach(cls, "__hash__", _hash(_key(hashed)))
        else:
            cls.__hash__ = None
    if frozen:
        names = frozenset(f.name for f in all_fields)
        _attach(cls, "__setattr__", _setattr(cls, names))
        _attach(cls, "__delattr__", _delattr(cls, names))
    if "__match_args__" not in own:
        matched = tuple(f.name for f in all_fields if f.init and not f.kw_only)
        cls.__match_args__ = matched  # type: ignore[misc]
    cls.__dataclass_fields__ = _FromTwin("__dataclass_fields__")
    cls.__dataclass_params__ = _FromTwin("__dataclass_params__")
    if not own.get("__doc__"):  # as dataclasses: the signature (rare: ours have docs)
        import inspect

        cls.__doc__ = cls.__name__ + str(inspect.signature(cls)).replace(" -> None", "")
    abc.update_abstractmethods(cls)
    return cls


def _field_of(value: Any) -> Any:
    """*value* as our Field if it is a ``dataclasses.field(...)``, else unchanged."""
    loaded = sys.modules.get("dataclasses")
    if loaded is None or not isinstance(value, loaded.Field):
        return value

    def ours(given: Any) -> Any:
        return MISSING if given is loaded.MISSING else given

    kw_only = value.kw_only is True
    return Field(
        ours(value.default),
        ours(value.default_factory),
        value.init,
        value.repr,
        value.hash,
        value.compare,
        kw_only,
    )


def _pseudo(annotation: Any) -> str | None:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    found = _PSEUDO.match(text)
    return found[1] if found else None


def _inherited(cls: type, frozen: bool) -> dict[str, Field]:
    """The fields *cls* inherits, base by base as dataclasses collects them."""
    by_name: dict[str, Field] = {}
    for base in cls.__mro__[-1:0:-1]:
        if "__record_fields__" in base.__dict__:
            base_fields: tuple[Field, ...] = base.__dict__["__record_fields__"]
            base_frozen = base.__dict__["__record_frozen__"]
        elif "__dataclass_fields__" in base.__dict__:  # a @dataclass base
            base_fields = _from_dataclass(base)
            base_frozen = base.__dict__["__dataclass_params__"].frozen
        else:
            continue
        if base_frozen != frozen:
            raise TypeError(
                "cannot inherit frozen dataclass from a non-frozen one"
                if frozen
                else "cannot inherit non-frozen dataclass from a frozen one"
            )
        for f in base_fields:
            by_name[f.name] = f
    return by_name


def _from_dataclass(base: type) -> tuple[Field, ...]:
    import dataclasses

    made = []
    for d in dataclasses.fields(base):
        f: Field = _field_of(d)
        f.name, f.type = d.name, d.type
        made.append(f)
    return tuple(made)


def _attach(cls: type, name: str, function: Callable[..., Any]) -> None:
    function.__qualname__ = f"{cls.__qualname__}.{name}"
    setattr(cls, name, function)


# --- the methods ---------------------------------------------------------------------

_PREFIX = "_record_"  # names the generated __init__ uses besides the fields'


def _init(cls: type, fields: tuple[Field, ...], frozen: bool) -> Callable[..., None]:
    """Compile ``__init__`` for *fields*, in dataclasses' order and signature."""
    names = {f.name for f in fields}
    self_name = "self" if "self" not in names else _PREFIX + "self"
    env: dict[str, Any] = {
        f"{_PREFIX}set": object.__setattr__,
        f"{_PREFIX}factory": _FACTORY,
    }
    positional, keyword_only, body = [], [], []
    seen_default = False
    for f in fields:
        if f.name.startswith(_PREFIX) or not f.name.isidentifier():
            raise TypeError(
                f"{cls.__qualname__}: a record cannot have a field named {f.name!r}"
            )
        if f.default is not MISSING:
            env[f"{_PREFIX}default_{f.name}"] = f.default
        if f.default_factory is not MISSING:
            env[f"{_PREFIX}make_{f.name}"] = f.default_factory
        if f.init:
            if f.default is not MISSING:
                param = f"{f.name}={_PREFIX}default_{f.name}"
            elif f.default_factory is not MISSING:
                param = f"{f.name}={_PREFIX}factory"
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
        value = _value(f)
        if value is not None:
            if frozen:
                body.append(f"    {_PREFIX}set({self_name}, {f.name!r}, {value})")
            else:
                body.append(f"    {self_name}.{f.name} = {value}")
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


def _value(f: Field) -> str | None:
    """The expression that sets field *f* in ``__init__``, or None to leave it unset."""
    if f.init:
        if f.default_factory is not MISSING:
            made = f"{_PREFIX}make_{f.name}()"
            return f"{made} if {f.name} is {_PREFIX}factory else {f.name}"
        return f.name
    if f.default_factory is not MISSING:
        return f"{_PREFIX}make_{f.name}()"
    if f.default is not MISSING:
        return f"{_PREFIX}default_{f.name}"
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


def _frozen_error() -> type[AttributeError]:
    """dataclasses' FrozenInstanceError once that module is loaded (so code catching
    it catches ours), else our own."""
    loaded = sys.modules.get("dataclasses")
    return loaded.FrozenInstanceError if loaded else FrozenInstanceError


def _setattr(cls: type[Any], names: frozenset[str]) -> Callable[[Any, str, Any], None]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise _frozen_error()(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    return __setattr__


def _delattr(cls: type[Any], names: frozenset[str]) -> Callable[[Any, str], None]:
    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise _frozen_error()(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __delattr__


# --- being a dataclass to those who ask ---------------------------------------------


class _FromTwin:
    """``__dataclass_fields__`` or ``__dataclass_params__`` of a record: made the
    first time something reads it (``dataclasses.fields``, ``asdict``,
    ``is_dataclass``, a ``@dataclass`` subclass), from a twin class with the same
    fields and options that ``dataclasses`` itself processes."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return getattr(_twin(owner if owner is not None else type(obj)), self.attribute)


def _twin(cls: type) -> type:
    twin: type | None = cls.__dict__.get("__record_twin__")
    if twin is None:
        import dataclasses

        def missing(value: Any) -> Any:
            return dataclasses.MISSING if value is MISSING else value

        annotations: dict[str, Any] = {}
        namespace: dict[str, Any] = {
            "__annotations__": annotations,
            "__doc__": cls.__doc__,
        }
        namespace["__module__"], namespace["__qualname__"] = (
            cls.__module__,
            cls.__qualname__,
        )
        for f in fields(cls):
            annotations[f.name] = f.type
            namespace[f.name] = dataclasses.field(
                default=missing(f.default),
                default_factory=missing(f.default_factory),
                init=f.init,
                repr=f.repr,
                hash=f.hash,
                compare=f.compare,
                kw_only=f.kw_only,
            )
        frozen: bool = cls.__record_frozen__  # type: ignore[attr-defined]
        twin = dataclasses.dataclass(frozen=frozen)(type(cls.__name__, (), namespace))
        type.__setattr__(cls, "__record_twin__", twin)
    return twin
