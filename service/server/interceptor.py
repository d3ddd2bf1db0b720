"""Counts and times every RPC, so handlers carry no metrics code.

For the bidirectional stream, latency is per message: from a request's arrival to the
response that answers it (responses come one per request, in order).
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import deque

import grpc

log = logging.getLogger("nextword.interceptor")


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics):
        self.metrics = metrics

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method.rsplit("/", 1)[-1]  # a registered method name: a small fixed set
        codec = (handler.request_deserializer, handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._unary(method, handler.unary_unary), *codec)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(self._stream(method, handler.stream_stream), *codec)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self._unary_stream(method, handler.unary_stream), *codec)
        return handler

    @contextlib.contextmanager
    def _tracked(self, method: str, context):
        """In-flight gauge while the RPC runs; its status code counted when it ends."""
        self.metrics.inflight.inc()
        failed = None
        try:
            yield
        except BaseException as e:
            failed = e
            raise
        finally:
            self.metrics.inflight.dec()
            if isinstance(failed, (asyncio.CancelledError, GeneratorExit)):
                code = "CANCELLED"  # the client went away (GeneratorExit: gRPC closed a stream's responses)
            else:
                code = context.code()
                code = code.name if isinstance(code, grpc.StatusCode) else ("UNKNOWN" if failed else "OK")
            if code == "UNKNOWN":  # an exception no handler turned into a status: worth knowing which
                log.warning("%s ended without a status: %s: %s", method, type(failed).__name__, failed)
            self.metrics.requests.labels(method, code).inc()

    def _unary(self, method, behavior):
        latency = self.metrics.latency.labels(method)

        async def handle(request, context):
            start = time.perf_counter()
            try:
                with self._tracked(method, context):
                    return await behavior(request, context)
            finally:
                latency.observe(time.perf_counter() - start)
        return handle

    def _stream(self, method, behavior):
        latency = self.metrics.latency.labels(method)

        async def handle(request_iterator, context):
            arrivals: deque[float] = deque()

            async def timed_requests():
                async for request in request_iterator:
                    arrivals.append(time.perf_counter())
                    yield request

            with self._tracked(method, context):
                async for response in behavior(timed_requests(), context):
                    if arrivals:
                        latency.observe(time.perf_counter() - arrivals.popleft())
                    yield response
        return handle

    def _unary_stream(self, method, behavior):  # health Watch: counted, not timed
        if inspect.isasyncgenfunction(behavior):
            async def handle(request, context):
                with self._tracked(method, context):
                    async for response in behavior(request, context):
                        yield response
            return handle

        async def handle_writes(request, context):  # a handler that writes with context.write()
            with self._tracked(method, context):
                return await behavior(request, context)
        return handle_writes


class _Malformed:
    """Stands in for a request that did not decode, so the handler can say why."""

    def __init__(self, error: Exception):
        reason = str(error).rsplit(":", 1)[-1].strip() or type(error).__name__
        self.message = ("request is not a valid nextword message: "
                        + ("text is not valid UTF-8" if "UTF-8" in reason else reason.lower()))


def _lenient(deserialize):
    def parse(data: bytes):
        try:
            return deserialize(data)
        except Exception as e:  # protobuf's DecodeError, or anything a garbled message provokes
            return _Malformed(e)
    return parse


class DecodeErrorInterceptor(grpc.aio.ServerInterceptor):
    """A message that does not decode (bad UTF-8, corrupt wire format) gets INVALID_ARGUMENT
    with a message a person understands, instead of gRPC's UNKNOWN with an exception name."""

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None or handler.unary_stream:
            return handler
        codec = (_lenient(handler.request_deserializer), handler.response_serializer)
        if handler.unary_unary:
            behavior = handler.unary_unary

            async def unary(request, context):
                if isinstance(request, _Malformed):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                return await behavior(request, context)
            return grpc.unary_unary_rpc_method_handler(unary, *codec)
        if handler.stream_stream:
            behavior = handler.stream_stream

            async def stream(request_iterator, context):
                async def checked():
                    async for request in request_iterator:
                        if isinstance(request, _Malformed):
                            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                        yield request
                async for response in behavior(checked(), context):
                    yield response
            return grpc.stream_stream_rpc_method_handler(stream, *codec)
        return handler
