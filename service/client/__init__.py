"""The Python client library: `NextWordClient` (blocking) and `AsyncNextWordClient` (asyncio).

It imports nothing of the server core (service/server): only the generated API code.
"""
from service.client.async_client import AsyncNextWordClient, AsyncTypingSession
from service.client.client import (
    Autocorrect,
    ClientError,
    NextWordClient,
    Strip,
    Suggestion,
    TypingSession,
    sign_user,
)

__all__ = ["AsyncNextWordClient", "AsyncTypingSession", "Autocorrect", "ClientError", "NextWordClient", "Strip",
           "Suggestion", "TypingSession", "sign_user"]
