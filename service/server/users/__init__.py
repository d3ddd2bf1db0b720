"""The user store, one room: the contract both stores keep (store.py), SQLite (sqlite.py) and
Redis (redis.py), the write-behind queue (writes.py), and the users layer that serves users'
models from them (layer.py). `open_store` opens the store the settings name."""
from __future__ import annotations

from service.server.settings import Settings, SettingsError, data_path
from service.server.users.redis import RedisStore
from service.server.users.sqlite import SqliteStore


def open_store(s: Settings, secret: bytes):
    """The store --user-store names (sqlite or redis; SQLite seals words with the deployment's
    secret); a one-line SettingsError if it cannot be opened."""
    ttl = s.user_ttl_days * 86400
    try:
        return RedisStore(s.redis_url, ttl) if s.user_store == "redis" else SqliteStore(data_path(s) / "users.sqlite3", ttl, secret)
    except OSError as e:
        raise SettingsError(f"cannot open the user store in {data_path(s)}: {e.strerror}") from None
    except Exception as e:  # sqlite3's and redis's own errors: say which store, not a traceback
        raise SettingsError(f"cannot open the {s.user_store} user store: {e}") from None
