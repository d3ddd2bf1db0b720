"""`nextword web`: a typing page in the browser, and the small JSON endpoint it uses.

    GET  /              the page (service/keyboard/static/index.html: plain HTML/CSS/JS, no build step)
    POST /api/predict   {"text": "how are yo", "k": 3}
                        -> {"suggestions": [{"text": "you", "kind": "completion", "probability": 0.31}, ...],
                            "replace": 2, "autocorrect": null, "latency_ms": 0.8}
    POST /api/send      {"text": "see you soon"} -> {"learned": 3}   (the Send button)
    (kind "correction": the word fixes a typo; "autocorrect": {"original": "ypu", "replacement":
    "you", "confidence": 0.98, "separator_length": 1} when the last word should be replaced)

`replace` is how many characters at the end of the text a suggestion replaces (the partial
word), so the page needs no tokenizer of its own. The gateway forwards to the gRPC server
with the Python client; gRPC errors come back as JSON with an HTTP status that says the
same thing. Typed text is never logged.

With `--user KEY` (a signed user key: `nextword user-key NAME`) the page types as that
user: suggestions mix in the user's words, and Send has the server learn the message.
Without it, Send only clears the text.
"""
from __future__ import annotations

import json
import logging
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc

from model.engine.text import split_typed
from service.client import ClientError, NextWordClient
from service.client.connect import add_address_flags, require_server, resolve_address

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


def predict(client: NextWordClient, body: dict, user: str = "") -> dict:
    text, k = body.get("text", ""), body.get("k", 3)
    if not isinstance(text, str) or not isinstance(k, int):
        raise ValueError('expected {"text": string, "k": integer}')
    started = time.perf_counter()
    strip = client.predict(text, k, probability=True, user=user)
    return {"suggestions": [s.__dict__ for s in strip], "replace": len(split_typed(text)[1]),
            "autocorrect": strip.autocorrect.__dict__ if strip.autocorrect else None,
            "latency_ms": round((time.perf_counter() - started) * 1e3, 2)}


def send(client: NextWordClient, body: dict, user: str = "") -> dict:
    """A message was sent: learned for the page's user (nothing to learn without one)."""
    text = body.get("text", "")
    if not isinstance(text, str):
        raise ValueError('expected {"text": string}')
    return {"learned": client.learn(user, text) if user else 0}


def make_handler(client: NextWordClient, user: str = ""):
    routes = {"/api/predict": predict, "/api/send": send}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
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
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body over {MAX_BODY} bytes"})
            try:
                self._json(HTTPStatus.OK, route(client, json.loads(self.rfile.read(length) or b"{}"), user))
            except (ValueError, AttributeError) as e:
                self._json(HTTPStatus.BAD_REQUEST, {"error": f"bad request: {e}"})
            except grpc.RpcError as e:
                status = HTTP_FOR.get(e.code(), HTTPStatus.BAD_GATEWAY)
                self._json(status, {"error": e.details() or e.code().name, "grpc_status": e.code().name})

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


def serve(address: str, host: str, port: int, timeout: float, user: str = "") -> None:
    if not 0 <= port <= 65535:
        raise ClientError(f"--port must be between 0 and 65535, got {port}")
    require_server(address)
    client = NextWordClient(address, timeout=timeout)
    try:
        httpd = ThreadingHTTPServer((host, port), make_handler(client, user))
    except OSError as e:
        client.close()
        raise ClientError(f"cannot serve the page on {host}:{port}: {e.strerror}") from None
    print(f"nextword: typing page on http://{host}:{httpd.server_address[1]}/ (forwarding to {address})", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        client.close()


def main(args) -> int:
    serve(resolve_address(args), args.host, args.port, args.timeout, args.user)
    return 0
