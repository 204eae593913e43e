"""Errors a handler raises to fail its execution on purpose."""

from __future__ import annotations

from datetime import timedelta

__all__ = ["HandlerError", "NonRetryableError"]


class HandlerError(Exception):
    """Fails the execution with a message, a kind and a retry decision.

    Any other exception a handler raises fails the execution too, as retryable, with the
    exception's class name as its kind. Raise ``HandlerError`` to choose instead.

    Args:
        message: What went wrong, written for the person who reads the execution's error.
        kind: A short machine-readable kind such as ``"Timeout"`` or ``"InvalidInput"``. Jobs
            can list kinds that must never be retried. Defaults to ``""`` for ``HandlerError``
            and ``NonRetryableError`` themselves and to the class name for their subclasses.
        retryable: Whether the control plane may retry the execution under the job's retry
            policy. Defaults to True.
        retry_after: The earliest delay before the next attempt, overriding the job's
            backoff, as a ``timedelta`` or in seconds. Defaults to None: the backoff decides.
    """

    def __init__(
        self,
        message: str,
        kind: str = "",
        *,
        retryable: bool = True,
        retry_after: float | timedelta | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind or _default_kind(type(self))
        self.retryable = retryable
        self.retry_after = _to_timedelta(retry_after)


class NonRetryableError(HandlerError):
    """Fails the execution for good: the control plane does not retry it.

    Args:
        message: What went wrong.
        kind: As for ``HandlerError``.
    """

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message, kind, retryable=False)


def _default_kind(cls: type[HandlerError]) -> str:
    if cls in (HandlerError, NonRetryableError):
        return ""
    return cls.__name__


def _to_timedelta(value: float | timedelta | None) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        value = timedelta(seconds=value)
    if value < timedelta(0):
        raise ValueError(f"retry_after must not be negative, got {value}")
    return value
