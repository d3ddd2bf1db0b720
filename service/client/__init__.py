"""The Python client library: `NextWordClient` (blocking) and `AsyncNextWordClient` (asyncio).

It imports nothing of the server core (service/server): only the generated API code, the
user-key format (service/userkeys.py) and the engine's error base.
"""
from service.client.async_client import AsyncNextWordClient, AsyncTypingSession
from service.client.client import NextWordClient, TypingSession
from service.client.common import Autocorrect, ClientError, Learned, Strip, Suggestion
from service.userkeys import sign_user

__all__ = ["AsyncNextWordClient", "AsyncTypingSession", "Autocorrect", "ClientError", "Learned", "NextWordClient", "Strip",
           "Suggestion", "TypingSession", "sign_user"]
