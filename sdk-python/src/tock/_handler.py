"""The @handler decorator: marks a function as a Tock handler without registering it."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

__all__ = ["handler"]

F = TypeVar("F", bound=Callable[..., Any])

_ATTR = "__tock_handler__"


@dataclass(frozen=True)
class _Definition:
    """What @handler recorded about a function."""

    name: str
    decode_json: bool


@dataclass(frozen=True)
class _Registered:
    """A handler as a worker runs it."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    decode_json: bool


@overload
def handler(fn: F, /) -> F: ...


@overload
def handler(name: str | None = None, *, json: bool = False) -> Callable[[F], F]: ...


def handler(name: Any = None, *, json: bool = False) -> Any:
    """Marks a function as a Tock handler.

    The function takes ``(ctx: tock.ExecutionContext, payload: bytes)`` and may be ``async
    def`` or plain ``def``; plain functions run on the worker's thread pool. It returns
    ``bytes``, ``str``, None, or a JSON-serialisable value (dicts, lists, dataclasses...).

    The decorator only annotates the function, which stays callable as before; a worker
    serves it once it is listed in ``Worker(handlers=[...])``.

    Use it bare (``@tock.handler``) or called (``@tock.handler("name", json=True)``).

    Args:
        name: The name jobs use to refer to the handler. Defaults to the function's name.
        json: Decode the payload as JSON and pass the decoded value instead of bytes. An
            empty payload decodes to None; a payload that is not JSON fails the execution
            as non-retryable with kind ``"InvalidPayload"``.
    """
    if callable(name):
        return _mark(name, None, decode_json=False)
    if name is not None:
        _check_name(name)

    def decorate(fn: F) -> F:
        return _mark(fn, name, decode_json=json)

    return decorate


def _mark(fn: F, name: str | None, *, decode_json: bool) -> F:
    if not callable(fn):
        raise TypeError(f"@tock.handler expects a function, got {fn!r}")
    name = _check_name(getattr(fn, "__name__", None) if name is None else name)
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        raise TypeError(f"handler {name!r} must accept two arguments: (ctx, payload)") from None
    except ValueError:
        pass  # No signature to check, as for some builtins.
    setattr(fn, _ATTR, _Definition(name=name, decode_json=decode_json))
    return fn


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"handler name must be a non-empty string without spaces, got {name!r}")
    return name


def _register(handlers: Sequence[Callable[..., Any]]) -> dict[str, _Registered]:
    """Collects the handlers a worker serves, by name."""
    registry: dict[str, _Registered] = {}
    for fn in handlers:
        definition = getattr(fn, _ATTR, None)
        if not isinstance(definition, _Definition):
            raise TypeError(f"{fn!r} is not a handler: decorate it with @tock.handler")
        if definition.name in registry:
            raise ValueError(f"more than one handler is named {definition.name!r}")
        registry[definition.name] = _Registered(
            name=definition.name,
            fn=fn,
            is_async=_is_async(fn),
            decode_json=definition.decode_json,
        )
    return registry


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)
