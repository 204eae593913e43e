"""The bearer token the agent presents on every call."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

_TRequest = TypeVar("_TRequest")
_TResponse = TypeVar("_TResponse")


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Rejects calls without ``authorization: Bearer <token>`` metadata as UNAUTHENTICATED."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("token must not be empty")
        self._token = token.encode()

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails],
            Awaitable[grpc.RpcMethodHandler[_TRequest, _TResponse] | None],
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_TRequest, _TResponse] | None:
        handler = await continuation(handler_call_details)
        if handler is None or self._authorized(handler_call_details):
            return handler
        return _deny(handler)

    def _authorized(self, details: grpc.HandlerCallDetails) -> bool:
        for key, value in details.invocation_metadata or ():
            if key != "authorization":
                continue
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer":
                continue
            if hmac.compare_digest(token.strip().encode(), self._token):
                return True
        return False


_DETAILS = "missing or invalid bearer token in the authorization metadata"


async def _abort(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _DETAILS)


def _deny(
    handler: grpc.RpcMethodHandler[_TRequest, _TResponse],
) -> grpc.RpcMethodHandler[_TRequest, _TResponse]:
    """A handler shaped like handler that rejects the call before reading it."""
    kwargs: dict[str, Any] = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(_abort, **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(_abort, **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(_abort, **kwargs)
    return grpc.unary_unary_rpc_method_handler(_abort, **kwargs)
