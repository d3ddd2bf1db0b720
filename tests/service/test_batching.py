"""The micro-batcher on a real onnxruntime session: grouping by shape, skipping cancelled calls."""
import asyncio

import numpy as np
import pytest

from conftest import SHIPPED_MODEL
from model.engine.runtime import Runtime
from service.server.batching import MicroBatcher, Overloaded
from service.server.metrics import Metrics


@pytest.fixture(scope="module")
def runtime():
    return Runtime(SHIPPED_MODEL, "cpu")


class Recorder:
    """Wraps the runtime's run to record each batch's shape (B, T); `pads` as the graph, or not."""

    def __init__(self, runtime, pads: bool | None = None):
        self.runtime, self.shapes = runtime, []
        self.layers, self.hidden = runtime.layers, runtime.hidden
        self.pads = runtime.pads if pads is None else pads

    def run(self, tokens, h, c):
        self.shapes.append(tokens.shape)
        return self.runtime.run(tokens, h, c)


def zero(runtime):
    h, c = runtime.zero_state(1)
    return h[:, 0], c[:, 0]


@pytest.mark.parametrize("pads", [True, False])
def test_steps_queued_together_share_runs(runtime, pads):
    """Padded into one run where the graph takes padding (the shipped one does), else one
    run per length; either way each caller gets exactly its answer alone."""
    recorder = Recorder(runtime, pads)

    async def scenario():
        batcher = MicroBatcher(recorder, Metrics(), max_batch=16, max_wait_s=0.01, max_queue=64)
        batcher.start()
        h, c = zero(runtime)
        steps = [[5], [6], [7, 8], [9], [10, 11]]
        results = await asyncio.gather(*(batcher.step(ids, h, c) for ids in steps))
        await batcher.close()
        return steps, results

    steps, results = asyncio.run(scenario())
    assert sorted(recorder.shapes) == ([(5, 2)] if pads else [(2, 2), (3, 1)])
    for ids, (logprobs, h, c) in zip(steps, results):  # each caller gets its own row: exactly its answer alone
        h0, c0 = zero(runtime)
        alone = runtime.run(np.array([ids], np.int64), h0[:, None], c0[:, None])
        np.testing.assert_array_equal(logprobs, alone.logprobs[0])
        np.testing.assert_array_equal(h, alone.h[:, 0])
        np.testing.assert_array_equal(c, alone.c[:, 0])


def test_the_shipped_graph_answers_a_row_the_same_alone_in_a_batch_and_token_by_token(runtime):
    """Its rows are quantised each on its own (model/export/quantize.py): batching and
    sequences change nothing, to the bit."""
    assert not runtime.one_at_a_time
    tokens = np.random.default_rng(3).integers(4, len(runtime.vocab), (64, 6)).astype(np.int64)
    h, c = runtime.zero_state(64)
    batch = runtime.run(tokens, h, c)
    for i in range(0, 64, 9):
        alone = runtime.run(tokens[i : i + 1], h[:, :1], c[:, :1])
        stepped_h, stepped_c = h[:, :1], c[:, :1]
        for t in range(tokens.shape[1]):
            step = runtime.run(tokens[i : i + 1, t : t + 1], stepped_h, stepped_c)
            stepped_h, stepped_c = step.h, step.c
        for got in (alone, step):
            np.testing.assert_array_equal(got.logprobs[0], batch.logprobs[i])
            np.testing.assert_array_equal(got.h[:, 0], batch.h[:, i])


def test_a_cancelled_call_costs_no_model_step(runtime):
    recorder = Recorder(runtime)

    async def scenario():
        batcher = MicroBatcher(recorder, Metrics(), max_batch=16, max_wait_s=0.05, max_queue=64)
        batcher.start()
        h, c = zero(runtime)
        cancelled = asyncio.ensure_future(batcher.step([5, 6, 7], h, c))
        kept = asyncio.ensure_future(batcher.step([9], h, c))
        await asyncio.sleep(0)  # both are queued; the worker waits max_wait for more
        cancelled.cancel()
        await kept
        await batcher.close()

    asyncio.run(scenario())
    assert recorder.shapes == [(1, 1)]  # the three-token step was never run


def test_a_full_queue_refuses_at_once(runtime):
    async def scenario():
        batcher = MicroBatcher(runtime, Metrics(), max_batch=1, max_wait_s=0, max_queue=1)  # never started: nothing drains
        h, c = zero(runtime)
        waiting = asyncio.ensure_future(batcher.step([5], h, c))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match="1 model steps queued"):
            await batcher.step([6], h, c)
        waiting.cancel()
        await batcher.close()

    asyncio.run(scenario())
