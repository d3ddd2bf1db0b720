"""The user store, one room: the contract both stores keep (store.py), SQLite (sqlite.py) and
Redis (redis.py), and the users layer that serves users' models from them (layer.py)."""
