"""The server's domain errors: what went wrong, said for a person, never a transport status.

Raised by the data plane and below; service/server/protocol.py maps each kind to a gRPC
status code in one place. A message never holds typed text, a user key or a learned word.
"""


class ServiceError(Exception):
    """A request the server does not answer as asked; the message says why, in one line."""


class InvalidInput(ServiceError):
    """The request itself is wrong (too long, an unknown layout, an edit past the text)."""


class Busy(ServiceError):
    """Too much at once (model-step queue, typing sessions): try again shortly."""


class TooLarge(ServiceError):
    """An answer that does not fit in one message (--max-message-bytes)."""


class Unavailable(ServiceError):
    """Not now: the server is shutting down, or the user store cannot be reached."""


class PersonalOff(ServiceError):
    """A request names a user on a server run with --user-store off."""


class Unsigned(ServiceError):
    """A user key without a signature."""


class WrongSignature(ServiceError):
    """A user key whose signature is not this server's."""
