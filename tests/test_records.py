"""``@record`` behaves as ``@dataclass(frozen=True)``: the two side by side.

Each test builds the same class both ways and compares what a caller can see: the
``__init__`` signature, defaults and factories, repr, equality, hashing, frozen
errors, ``fields``/``replace``/``asdict``, inheritance, pickling and copying.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import subprocess
import sys
from dataclasses import (
    FrozenInstanceError,
    InitVar,  # noqa: F401 - dataclasses looks it up here by name
    dataclass,
    field,
)
from typing import Any, ClassVar

import pytest
from doctor_cli import python_lines
from hypothesis import given, settings
from hypothesis import strategies as st
from shipyard_doctor import records
from shipyard_doctor.records import mutable_record, record

FROZEN = dataclass(frozen=True)


def ours(spec: dataclasses.Field[Any]) -> Any:
    """The same field declared with records.field."""
    options = {k: getattr(spec, k) for k in ("init", "repr", "hash", "compare")}
    if spec.default is not dataclasses.MISSING:
        options["default"] = spec.default
    if spec.default_factory is not dataclasses.MISSING:
        options["default_factory"] = spec.default_factory
    return records.field(**options, kw_only=spec.kw_only is True)


def both(
    namespace: dict[str, Any],
    name: str = "Thing",
    bases: tuple[type, ...] = (),
    frozen: bool = True,
):
    """*namespace* made a class by ``@record`` (its fields declared with
    records.field) and by ``@dataclass(frozen=True)``; ``frozen=False``: by
    ``@mutable_record`` and ``@dataclass``."""
    made = []
    for decorate in (record, FROZEN) if frozen else (mutable_record, dataclass):
        mine = decorate in (record, mutable_record)
        body = {
            k: (
                (ours(v) if mine else copy.copy(v))
                if isinstance(v, dataclasses.Field)
                else v
            )
            for k, v in namespace.items()
        }
        made.append(decorate(type(name, bases, body)))
    return made


def view(obj: Any) -> tuple[Any, ...]:
    """What a caller sees of an instance, the class's own name aside."""
    try:
        hashed: object = hash(obj)
    except TypeError as e:  # a list among the hashed fields: the same error both ways
        hashed = str(e)
    return (
        repr(obj),
        hashed,
        [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)],
        dataclasses.asdict(obj),
        type(obj).__match_args__,
    )


SHAPE = {
    "__annotations__": {
        "name": "str",
        "port": "int",
        "tags": "tuple[str, ...]",
        "data": "dict[str, int]",
        "note": "str",
        "secret": "str",
        "cached": "int",
        "kind": "ClassVar[str]",
    },
    "__doc__": "A test shape.",
    "port": 80,
    "tags": (),
    "data": field(default_factory=dict, compare=False),
    "note": field(default="", repr=False, hash=False),
    "secret": field(default="x", compare=False, repr=False),
    "cached": field(default=0, init=False),
    "kind": "shape",
}


def test_the_same_signature_defaults_repr_equality_and_hash():
    rec, dc = both(SHAPE)
    assert str(inspect.signature(rec)) == str(inspect.signature(dc))
    assert rec.__doc__ == dc.__doc__ == "A test shape."
    for args, kwargs in [
        (("a",), {}),
        (("a", 1, ("t",)), {"note": "n"}),
        ((), {"name": "b", "data": {"k": 1}, "secret": "s"}),
    ]:
        assert view(rec(*args, **kwargs)) == view(dc(*args, **kwargs))
    one, other = rec("a", data={"x": 1}), rec("a", data={"y": 2})
    assert one == other and hash(one) == hash(other)  # data: compare=False
    assert rec("a") != rec("b") and rec("a") != dc("a") and rec("a") != ("a", 80)
    # note compares, but is not hashed
    assert rec("a", note="n") != rec("a", note="m") and dc("a", note="n") != dc(
        "a", note="m"
    )
    assert hash(rec("a", note="n")) == hash(rec("a", note="m"))


def test_factories_make_a_new_value_for_each_instance():
    rec, dc = both(SHAPE)
    first, second = rec("a"), rec("b")
    assert first.data == {} and first.data is not second.data
    assert rec("a").cached == dc("a").cached == 0
    listed = both(
        {
            "__annotations__": {"items": "list[int]", "made": "list[int]"},
            "__doc__": "d",
            "items": field(default_factory=list),
            "made": field(default_factory=lambda: [1], init=False),
        }
    )
    for cls in listed:
        assert cls().items == [] and cls().made == [1] and cls().made is not cls().made
        assert cls([3]).items == [3]
        with pytest.raises(TypeError):
            cls([3], [4])


def test_fields_are_frozen_like_a_frozen_dataclass():
    for cls in both(SHAPE):
        thing = cls("a")
        with pytest.raises(FrozenInstanceError, match="cannot assign to field 'name'"):
            thing.name = "b"
        with pytest.raises(FrozenInstanceError, match="cannot assign to field 'other'"):
            thing.other = 1  # nothing new on the class itself either
        with pytest.raises(FrozenInstanceError, match="cannot delete field 'port'"):
            del thing.port
        # a plain subclass may add attributes, but not change fields
        plain = type("Plain", (cls,), {})("a")
        plain.extra = 1
        assert plain.extra == 1
        with pytest.raises(FrozenInstanceError):
            plain.name = "b"


def test_replace_fields_asdict_and_is_dataclass_work():
    rec, _ = both(SHAPE)
    thing = rec("a", 1)
    assert dataclasses.is_dataclass(rec) and dataclasses.is_dataclass(thing)
    assert [f.name for f in dataclasses.fields(rec)] == [
        "name",
        "port",
        "tags",
        "data",
        "note",
        "secret",
        "cached",
    ]
    moved = dataclasses.replace(thing, port=2)
    assert (moved.name, moved.port, thing.port) == ("a", 2, 1)
    with pytest.raises(ValueError, match="init=False"):
        dataclasses.replace(thing, cached=1)
    assert rec.__dataclass_params__.frozen and rec.__dataclass_params__.eq


def test_post_init_runs_and_may_set_fields_through_object():
    def post(self):
        object.__setattr__(self, "twice", self.base * 2)

    namespace = {
        "__annotations__": {"base": "int", "twice": "int"},
        "__doc__": "d",
        "twice": field(default=0, init=False),
        "__post_init__": post,
    }
    rec, dc = both(namespace)
    assert rec(4).twice == dc(4).twice == 8
    assert repr(rec(4)).replace("Thing", "") == repr(dc(4)).replace("Thing", "")


def test_keyword_only_fields_follow_the_others():
    namespace = {
        "__annotations__": {"a": "int", "b": "int", "c": "int"},
        "__doc__": "d",
        "b": field(kw_only=True),
        "c": 3,
    }
    rec, dc = both(namespace)
    assert (
        str(inspect.signature(rec))
        == str(inspect.signature(dc))
        == "(a: 'int', c: 'int' = 3, *, b: 'int') -> None"
    )
    assert view(rec(1, b=2)) == view(dc(1, b=2))
    with pytest.raises(TypeError):
        rec(1, 2)


def test_inheritance_in_every_direction():
    base_ns = {"__annotations__": {"a": "int", "b": "int"}, "__doc__": "d", "b": 2}
    child_ns = {"__annotations__": {"c": "int"}, "__doc__": "d", "c": 3}
    rec_base, dc_base = both(base_ns, "Base")
    for base in (rec_base, dc_base):
        rec_child, dc_child = both(child_ns, "Child", (base,))
        assert str(inspect.signature(rec_child)) == str(inspect.signature(dc_child))
        assert view(rec_child(1)) == view(dc_child(1))
        assert rec_child(1) != base(1, 2)
        with pytest.raises(FrozenInstanceError):
            rec_child(1).a = 5
    # a frozen class cannot inherit a mutable dataclass: the same refusal
    mutable = dataclass(type("Mutable", (), {"__annotations__": {"a": "int"}}))
    for decorate in (record, FROZEN):
        with pytest.raises(TypeError, match="non-frozen"):
            decorate(type("Child", (mutable,), {"__doc__": "d"}))


def test_methods_the_class_writes_itself_are_kept():
    namespace = {
        "__annotations__": {"a": "int"},
        "__doc__": "d",
        "__repr__": lambda self: "mine",
        "__eq__": lambda self, other: True,
        "__hash__": lambda self: 7,
    }
    for cls in both(namespace):
        assert (repr(cls(1)), cls(1) == cls(2), hash(cls(1))) == ("mine", True, 7)
    only_eq = {
        "__annotations__": {"a": "int"},
        "__doc__": "d",
        "__eq__": lambda s, o: True,
    }
    rec, dc = both(only_eq)  # Python sets __hash__ = None; dataclasses adds its own
    assert hash(rec(1)) == hash(dc(1))
    unhashable = {"__annotations__": {"a": "int"}, "__doc__": "d", "__hash__": None}
    for cls in both(unhashable):
        with pytest.raises(TypeError, match="unhashable"):
            hash(cls(1))


def test_refusals():
    with pytest.raises(
        TypeError, match="non-default argument 'b' follows default argument"
    ):
        record(type("Bad", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1}))
    with pytest.raises(TypeError, match="__setattr__"):
        record(
            type(
                "Bad",
                (),
                {"__annotations__": {"a": "int"}, "__setattr__": lambda s, n, v: None},
            )
        )
    with pytest.raises(TypeError, match="InitVar"):
        record(type("Bad", (), {"__annotations__": {"a": "InitVar[int]"}}))
    with pytest.raises(TypeError, match="_record_x"):
        record(type("Bad", (), {"__annotations__": {"_record_x": "int"}}))


def test_a_field_named_self_and_an_undocumented_class():
    rec, dc = both({"__annotations__": {"self": "int", "other": "int"}, "other": 0})
    assert rec(self=1).self == dc(self=1).self == 1
    assert rec.__doc__ == dc.__doc__ == "Thing(self: 'int', other: 'int' = 0)"


@record
class Pickled:
    """A module-level record, so pickle can find it."""

    name: str
    parts: tuple[int, ...] = ()
    kind: ClassVar[str] = "k"


def test_pickle_copy_and_deepcopy_round_trip():
    thing = Pickled("a", (1, 2))
    for again in (
        pickle.loads(pickle.dumps(thing)),
        copy.copy(thing),
        copy.deepcopy(thing),
    ):
        assert again == thing and again is not thing and again.parts == (1, 2)


def test_a_record_that_contains_itself_repr_does_not_recurse():
    rec, _ = both({"__annotations__": {"items": "list[Any]"}, "__doc__": "d"})
    items: list[Any] = []
    thing = rec(items)
    items.append(thing)
    assert repr(thing) == "Thing(items=[...])"


_KINDS = st.sampled_from(
    ["plain", "default", "factory", "noinit-default", "noinit-factory"]
)
_FIELD = st.tuples(
    _KINDS, st.booleans(), st.booleans(), st.sampled_from([None, True, False])
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_FIELD, max_size=6), st.data())
def test_any_shape_of_fields_matches_dataclasses(specs, data):
    namespace: dict[str, Any] = {"__annotations__": {}, "__doc__": "d"}
    seen_default = False
    for index, (kind, shown, compared, hashed) in enumerate(specs):
        name = f"f{index}"
        if kind == "plain" and seen_default:
            kind = "default"  # dataclasses' own rule: no plain field after a default
        seen_default |= kind in ("default", "factory")
        namespace["__annotations__"][name] = "Any"
        options: dict[str, Any] = {"repr": shown, "compare": compared, "hash": hashed}
        if kind == "default":
            options["default"] = index
        elif kind == "factory":
            options["default_factory"] = lambda index=index: [index]
        elif kind == "noinit-default":
            options.update(default=-index, init=False)
        elif kind == "noinit-factory":
            options.update(
                default_factory=lambda index=index: {index: index}, init=False
            )
        if kind != "plain" or not (shown and compared and hashed is None):
            namespace[name] = field(**options)
    rec, dc = both(namespace)
    assert str(inspect.signature(rec)) == str(inspect.signature(dc))
    params = [p for p in inspect.signature(dc).parameters.values()]
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    given_values = {
        p.name: data.draw(st.integers(0, 2), label=p.name)
        for p in params
        if p.name in required or data.draw(st.booleans(), label="pass " + p.name)
    }
    one = rec(**given_values)
    assert view(one) == view(dc(**given_values))
    other_values = {
        k: data.draw(st.integers(0, 2), label="other " + k) for k in given_values
    }
    assert (one == rec(**other_values)) == (dc(**given_values) == dc(**other_values))


def test_a_mutable_record_is_a_plain_dataclass():
    def post(self):
        self.twice = self.base * 2

    namespace = {
        "__annotations__": {"base": "int", "twice": "int", "seen": "list[int]"},
        "__doc__": "d",
        "twice": field(default=0, init=False),
        "seen": field(default_factory=list),
        "__post_init__": post,
    }
    rec, dc = both(namespace, frozen=False)
    assert str(inspect.signature(rec)) == str(inspect.signature(dc))
    one, same = rec(4), dc(4)
    assert (repr(one), one.twice) == (repr(same), 8)
    one.base = 5  # assignable
    one.seen.append(1)
    assert (one.base, one.seen, rec(4).seen) == (5, [1], [])
    assert rec(4) == rec(4) and rec(4) != rec(5)
    for cls in (rec, dc):
        assert cls.__hash__ is None  # eq without frozen: unhashable, as dataclasses
    with pytest.raises(TypeError, match="non-frozen"):
        record(type("Child", (rec,), {"__doc__": "d"}))
    with pytest.raises(TypeError, match="non-frozen"):
        mutable_record(type("Child", (rec_frozen := record(type("F", (), {})),), {}))
    assert rec_frozen.__dataclass_params__.frozen


def test_records_own_fields_and_replace():
    @record
    class Spec:
        """Ours, with records.field."""

        name: str
        items: tuple[int, ...] = records.field(default=(), compare=False)
        made: list[int] = records.field(default_factory=list, init=False)

    spec = Spec("a", (1,))
    assert [f.name for f in records.fields(spec)] == ["name", "items", "made"]
    assert records.fields(Spec) == records.fields(spec)
    moved = records.replace(spec, name="b")
    assert (moved.name, moved.items, moved.made) == ("b", (1,), [])
    with pytest.raises(ValueError, match="init=False"):
        records.replace(spec, made=[2])
    with pytest.raises(TypeError, match="not a record"):
        records.fields(object())
    assert Spec("a", (1,)) == Spec("a", (2,))  # items: compare=False
    with pytest.raises(ValueError, match="both default and default_factory"):
        records.field(default=1, default_factory=list)
    for decorate in (record, FROZEN):
        with pytest.raises(ValueError, match="mutable default"):
            decorate(type("Bad", (), {"__annotations__": {"a": "list"}, "a": []}))
    with pytest.raises(TypeError, match="'a' is a field but has no type annotation"):
        record(type("Bad", (), {"a": records.field(default=1)}))


NO_DATACLASSES = """
import sys
from shipyard_doctor.records import record

@record
class Point:
    '''A point.'''
    x: int
    y: int = 0

p = Point(1)
try:
    p.x = 2
except AttributeError as e:
    print(type(e).__module__, type(e).__name__, e)
print(p, p == Point(1, 0), hash(p) == hash(Point(1)))
print(sorted(m for m in ("dataclasses", "inspect") if m in sys.modules))
import dataclasses
print(dataclasses.is_dataclass(p), dataclasses.asdict(p))
try:
    p.y = 1
except dataclasses.FrozenInstanceError as e:
    print("dataclasses'", e)
"""


def test_a_record_needs_neither_dataclasses_nor_inspect_until_asked():
    assert python_lines(NO_DATACLASSES) == [
        "shipyard_doctor.records FrozenInstanceError cannot assign to field 'x'",
        "Point(x=1, y=0) True True",
        "[]",
        "True {'x': 1, 'y': 0}",
        "dataclasses' cannot assign to field 'y'",
    ]


CHECK_IMPORTS = """
import contextlib, io, json, sys
from shipyard_doctor.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(["check", "--json", "--docker-host", sys.argv[1]])
doc = json.loads(out.getvalue())
print(code, sorted({c["status"] for c in doc["checks"]}), len(doc["checks"]))
heavy = ("dataclasses", "inspect", "shutil", "docker", "psutil", "rich",
         "importlib.metadata")
print(sorted(m for m in heavy if m in sys.modules))
"""


@pytest.mark.infra
def test_a_full_check_imports_no_heavy_module(docker_host):
    # The speed of a check (benchmarks/hostbench.py) rests on what it does not load:
    # the docker SDK, psutil, rich, importlib.metadata, dataclasses, inspect, shutil.
    done = subprocess.run(
        docker_host.netns.nsenter_argv(
            [sys.executable, "-c", CHECK_IMPORTS, docker_host.dockerd.url]
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary, loaded = done.stdout.splitlines()
    assert "error" not in summary and summary.endswith(" 10"), summary
    assert loaded == "[]"
