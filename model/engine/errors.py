"""The one base class for a user's mistake (a missing file, a bad flag, no server).

`nextword` reports any UserError as one line and exits 2, never with a traceback; every
other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Something the user can fix: the message says what, in one line."""
