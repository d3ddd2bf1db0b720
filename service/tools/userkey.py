"""`nextword user-key NAME`: a user key signed with the server's user secret.

What an app backend does for each of its users (`service.client.sign_user(secret, name)`),
for one user on this machine: the terminal keyboard and the web page take the key with
--user. It reads the secret the server uses (--user-secret-file, else the config directory's),
so it takes the same --data-dir and --user-secret-file as `nextword serve`.
"""
from __future__ import annotations

from service.server.security import load_user_secret
from service.server.settings import SettingsError, from_args, user_secret_path
from service.userkeys import sign_user


def add_arguments(p) -> None:
    p.add_argument("name", help="the user's name or id, as your app knows it (not a secret)")
    p.add_argument("--data-dir", default=None, help="the server's data directory (default: as nextword serve)")
    p.add_argument("--user-secret-file", default=None, help="the server's user secret (default: as nextword serve: ~/.config/nextword/user-secret)")


def main(args) -> int:
    if not args.name or len(args.name) > 200:
        raise SettingsError("the name must be 1 to 200 characters")
    path = user_secret_path(from_args(args))
    if not path.exists():
        raise SettingsError(f"no user secret at {path}: start the server once (scripts/serve) to make it, or pass --user-secret-file")
    print(sign_user(load_user_secret(path, create=False), args.name))
    return 0
