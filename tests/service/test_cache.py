"""The state cache is a plain LRU; the boundary it relies on is model.engine.text.parent_context."""
import numpy as np

from model.engine.text import parent_context, tokenize
from service.server.cache import ContextCache, Entry


def entry(n: int) -> Entry:
    return Entry(n, np.zeros(1), np.zeros(1), np.zeros(1))


def test_least_recently_used_goes_first():
    cache = ContextCache(2)
    cache.put("a ", entry(1))
    cache.put("b ", entry(2))
    assert cache.get("a ").tokens == 1  # "a " is now the most recent ...
    cache.put("c ", entry(3))            # ... so "b " is the one evicted
    assert cache.get("b ") is None and cache.get("a ").tokens == 1 and cache.get("c ").tokens == 3
    assert len(cache) == 2


def test_putting_again_replaces_and_refreshes():
    cache = ContextCache(2)
    cache.put("a ", entry(1))
    cache.put("b ", entry(2))
    cache.put("a ", entry(5))
    cache.put("c ", entry(3))
    assert cache.get("a ").tokens == 5 and cache.get("b ") is None


def test_parent_context_drops_the_last_chunk_and_tokens_add_up():
    assert parent_context("how are you ") == "how are "
    assert parent_context("how are you") == "how are "
    assert parent_context("hello, world!  ") == "hello, "
    assert parent_context("   ") == "" and parent_context("") == "" and parent_context("one") == ""
    for text in ("how are you ", "ok... so 12:30 works? 👍🏽 ", "I'm  here\tnow "):
        parent = parent_context(text)
        assert tokenize(parent) + tokenize(text[len(parent):]) == tokenize(text)
