"""How host facts are remembered, and how a fact that cannot be read says why.

A fact module's function ``f(host, *args)`` decorated with :func:`host_fact` is
computed once per :class:`~shipyard_doctor.host.gateway.Host` for each distinct set of
arguments: the cache key is the function and its arguments, never a hand-written
string. A fact that cannot be read is an :class:`Unavailable` carrying the reason,
not ``None``, so a check can tell the user why it could not look.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Concatenate, Literal, ParamSpec, Protocol, TypeVar

from shipyard_doctor.records import record

T = TypeVar("T")
P = ParamSpec("P")


@record
class Unavailable:
    """A fact that could not be read, and why (one line for the user)."""

    reason: str

    def __bool__(self) -> Literal[False]:  # "facts or ()": missing means none
        return False


class Memo(Protocol):
    def memo(self, key: Hashable, compute: Callable[[], T]) -> T: ...


H = TypeVar("H", bound=Memo)


def fact_key(func: Callable[..., object], *args: Hashable) -> tuple[Hashable, ...]:
    """The cache key of ``func(host, *args)``: its module, name and arguments."""
    return (func.__module__, func.__qualname__, *args)


def host_fact(func: Callable[Concatenate[H, P], T]) -> Callable[Concatenate[H, P], T]:
    """Compute ``func(host, *args)`` once per host and distinct arguments (which
    must be hashable), thread-safe like every host fact."""

    @functools.wraps(func)
    def wrapper(host: H, /, *args: P.args, **kwargs: P.kwargs) -> T:
        key = fact_key(func, *args, *sorted(kwargs.items()))
        return host.memo(key, lambda: func(host, *args, **kwargs))

    return wrapper
