"""`nextword web`: a typing page in the browser, and the small JSON endpoint it uses.

    GET  /              the page (service/keyboard/static/index.html: plain HTML/CSS/JS, no build step)
    POST /api/predict   {"text": "how are yo", "k": 3, "typed": 10, "accepted": 0, "auto_space": false}
                        -> {"suggestions": [{"text": "you", "kind": "completion", "probability": 0.31}, ...],
                            "replace": 2, "autocorrect": null, "latency_ms": 0.8,
                            "keys": 10, "characters": 10, "saved": 0.0}
    POST /api/send      {"text": "see you soon", "incognito": false} -> {"learned": 3, "outcome": "learned"}  (Send)
    POST /api/forget    {"word": "Zorblax"} -> {}   (the x on a suggestion: "remove this suggestion")
    (kind "correction": the word fixes a typo; "autocorrect": {"original": "ypu", "replacement":
    "you", "confidence": 0.98, "separator_length": 1} when the last word should be replaced)

`replace` is how many characters at the end of the text a suggestion replaces (the partial
word), so the page needs no tokenizer of its own. The page counts what the person did (`typed`:
characters typed and backspaces that undo an autocorrect; `accepted`: suggestions taken) and
whether the text ends with the space of an accepted word; `keys`, `characters` and `saved`
come back by the rule of model/engine/savings.py, so the page holds no savings rule of its own. The gateway forwards to the gRPC server
with the Python client; gRPC errors come back as JSON with an HTTP status that says the
same thing. Typed text is never logged.

With `--user KEY` (a signed user key: `nextword user-key NAME`) the page types as that
user: suggestions mix in the user's words, Send has the server learn the message, and the x
on a suggestion removes it for the user. Without it, Send only clears the text. "incognito"
(a checkbox on the page) reads and learns nothing of the user.

A request the gateway cannot read (not JSON, a wrong field, a bad Content-Length) gets 400
with a one-line error; every answer is JSON.
"""
from __future__ import annotations

import json
import logging
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc

from model.engine.savings import ACCEPT, characters, savings
from model.engine.text import split_typed
from service.client import ClientError, NextWordClient
from service.client.connect import Connection, add_address_flags, check_user, connection, first_contact

PAGE = Path(__file__).resolve().parent / "static" / "index.html"
MAX_BODY = 64 * 1024
log = logging.getLogger("nextword.web")

HTTP_FOR = {grpc.StatusCode.INVALID_ARGUMENT: HTTPStatus.BAD_REQUEST,
            grpc.StatusCode.RESOURCE_EXHAUSTED: HTTPStatus.TOO_MANY_REQUESTS,
            grpc.StatusCode.DEADLINE_EXCEEDED: HTTPStatus.GATEWAY_TIMEOUT}


def add_arguments(p) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address the page is served on")
    p.add_argument("--port", type=int, default=8080, help="port the page is served on (0: a free one)")
    p.add_argument("--user", default="", help="type as this user (a signed key: nextword user-key NAME); Send learns")
    add_address_flags(p, timeout=2.0)


class BadRequest(ValueError):
    """A request body the gateway cannot use: 400 with this message."""


def field(body: dict, name: str, kind: type, default):
    value = body.get(name, default)
    if type(value) is not kind:  # exactly: JSON true is not an integer here
        raise BadRequest(f'"{name}" must be {"an integer" if kind is int else "a " + kind.__name__}')
    return value


def predict(client: NextWordClient, body: dict, user: str = "") -> dict:
    text, k = field(body, "text", str, ""), field(body, "k", int, 3)
    if k < 1:
        raise BadRequest(f'"k" must be at least 1, got {k}')
    started = time.perf_counter()
    strip = client.predict(text, k, probability=True, user=user, incognito=field(body, "incognito", bool, False))
    keys = field(body, "typed", int, 0) + ACCEPT * field(body, "accepted", int, 0)
    chars = characters(text, field(body, "auto_space", bool, False))
    return {"suggestions": [s.__dict__ for s in strip], "replace": len(split_typed(text)[1]),
            "autocorrect": strip.autocorrect.__dict__ if strip.autocorrect else None,
            "latency_ms": round((time.perf_counter() - started) * 1e3, 2),
            "keys": keys, "characters": chars, "saved": round(savings(keys, chars), 4)}


def send(client: NextWordClient, body: dict, user: str = "") -> dict:
    """A message was sent: learned for the page's user (nothing to learn without one, or incognito)."""
    text, incognito = field(body, "text", str, ""), field(body, "incognito", bool, False)
    if not user or incognito:
        return {"learned": 0, "outcome": "incognito" if incognito else "no user"}
    learned = client.learn(user, text)
    return {"learned": learned.words, "outcome": learned.outcome}


def forget(client: NextWordClient, body: dict, user: str = "") -> dict:
    """The x on a suggestion: the word is removed for the page's user."""
    word = field(body, "word", str, "")
    if not user:
        raise BadRequest("no user to remove a suggestion for: start nextword web with --user")
    client.forget(user, word=word)
    return {}


def make_handler(client: NextWordClient, user: str = ""):
    routes = {"/api/predict": predict, "/api/send": send, "/api/forget": forget}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/favicon.ico":
                self.send_response(HTTPStatus.NO_CONTENT)
                self.end_headers()
                return
            if self.path not in ("/", "/index.html"):
                return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            page = PAGE.read_bytes()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def do_POST(self):
            route = routes.get(self.path)
            if route is None:
                return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            try:
                self._json(HTTPStatus.OK, route(client, self._body(), user))
            except BadRequest as e:
                self._json(HTTPStatus.BAD_REQUEST, {"error": f"bad request: {e}"})
            except grpc.RpcError as e:
                status = HTTP_FOR.get(e.code(), HTTPStatus.BAD_GATEWAY)
                self._json(status, {"error": e.details() or e.code().name, "grpc_status": e.code().name})

        def _body(self) -> dict:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise BadRequest("Content-Length is not a number") from None
            if not 0 <= length <= MAX_BODY:
                raise BadRequest(f"the body must be 0 to {MAX_BODY} bytes")
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except (ValueError, UnicodeDecodeError):
                raise BadRequest("the body is not JSON") from None
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            return body

        def _json(self, status: HTTPStatus, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *args):  # method, path and status only: never the body
            log.debug("%s %s", self.command, self.path)

    return Handler


def serve(conn: Connection, host: str, port: int, user: str = "") -> None:
    if not 0 <= port <= 65535:
        raise ClientError(f"--port must be between 0 and 65535, got {port}")
    first_contact(conn)
    address, client = conn.address, conn.client()
    try:
        check_user(client, user)
        httpd = ThreadingHTTPServer((host, port), make_handler(client, user))
    except OSError as e:
        client.close()
        raise ClientError(f"cannot serve the page on {host}:{port}: {e.strerror}") from None
    except ClientError:
        client.close()
        raise
    print(f"nextword: typing page on http://{host}:{httpd.server_address[1]}/ (forwarding to {address})", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        client.close()


def main(args) -> int:
    serve(connection(args), args.host, args.port, args.user)
    return 0
