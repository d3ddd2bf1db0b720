"""Counts and times every RPC, so handlers carry no metrics code.

For the bidirectional stream, latency is per message: from a request's arrival to the
response that answers it (responses come one per request, in order).
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import deque

import grpc


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
            if isinstance(failed, asyncio.CancelledError):
                code = "CANCELLED"
            else:
                code = context.code()
                code = code.name if isinstance(code, grpc.StatusCode) else ("UNKNOWN" if failed else "OK")
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
