"""Micro-batching: concurrent model steps share one onnxruntime call.

Callers await `step(tokens, h, c)`. One worker takes what is queued (up to max_batch,
after waiting at most max_wait for more) and runs it in a thread, so the event loop keeps
serving meanwhile: all in one call, right-padded, where the graph takes padding (today's
int8 graph), else grouped by number of tokens (a batch needs one shape).
Whatever arrives while a call runs is batched into the next one. A full queue refuses
new steps (load shedding) instead of letting latency grow without bound.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from model.engine.runtime import Runtime
from service.server.errors import Busy


PADDING = -1  # a token id that leaves a row's state as it is (model.engine.contract.pads)


class Overloaded(Busy):
    """The queue of model steps is full."""


@dataclass
class _Item:
    tokens: np.ndarray  # (T,) int64
    h: np.ndarray       # (layers, hidden)
    c: np.ndarray
    future: asyncio.Future
    queued_at: float


class MicroBatcher:
    def __init__(self, runtime: Runtime, metrics, max_batch: int, max_wait_s: float, max_queue: int):
        self.runtime, self.metrics = runtime, metrics
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_s, max_queue
        self._queue: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnxruntime")
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._worker:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def step(self, tokens: list[int], h: np.ndarray, c: np.ndarray):
        """Feed tokens from state (h, c): returns (logprobs (V,), h, c) after them."""
        if len(self._queue) >= self.max_queue:
            raise Overloaded(f"server busy: {len(self._queue)} model steps queued")
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(np.asarray(tokens, np.int64), h, c, future, time.perf_counter()))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self.max_wait_s and len(self._queue) < self.max_batch:
                await asyncio.sleep(self.max_wait_s)
            batch = self._take()
            if not self._queue:
                self._wake.clear()
            groups: dict[int, list[_Item]] = {}
            for item in batch:  # a graph that takes padding runs them all at once, right-padded
                groups.setdefault(0 if self.runtime.pads else len(item.tokens), []).append(item)
            for items in groups.values():
                await self._run_group(items)

    def _take(self) -> list[_Item]:
        batch = []
        while self._queue and len(batch) < self.max_batch:
            item = self._queue.popleft()
            if not item.future.done():  # a cancelled call (deadline, disconnect) costs nothing
                batch.append(item)
        return batch

    async def _run_group(self, items: list[_Item]) -> None:
        started = time.perf_counter()
        for item in items:
            self.metrics.queue_wait.observe(started - item.queued_at)
        tokens = np.full((len(items), max(len(i.tokens) for i in items)), PADDING, np.int64)
        for row, item in enumerate(items):
            tokens[row, : len(item.tokens)] = item.tokens
        h = np.stack([i.h for i in items], axis=1)
        c = np.stack([i.c for i in items], axis=1)
        try:
            step = await asyncio.get_running_loop().run_in_executor(self._executor, self.runtime.run, tokens, h, c)
        except Exception as e:  # a failed run fails its callers, never the worker
            for item in items:
                if not item.future.done():
                    item.future.set_exception(e)
            return
        self.metrics.inference.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(items))
        for row, item in enumerate(items):
            if not item.future.done():
                # copies: a cached row must not keep the whole batch's arrays alive
                item.future.set_result((step.logprobs[row].copy(), step.h[:, row].copy(), step.c[:, row].copy()))
