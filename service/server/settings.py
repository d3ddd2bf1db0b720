"""Server settings: one object, read from flags and NEXTWORD_* environment variables.

Precedence: command-line flag > environment variable > default. Every field has a
default and a one-line doc; nothing else in the service reads the environment
(data_path reads XDG_DATA_HOME, as the XDG convention says).
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from model.engine.contract import SHIPPED_MODEL
from model.engine.errors import UserError
from model.engine.layouts import DEFAULT_LAYOUT, LAYOUTS, PROVIDER_NAMES
from model.engine.personal import MIN_COUNT

PROVIDERS = ("auto", *PROVIDER_NAMES)


class SettingsError(UserError):
    """A setting with a value the server cannot use: reported as one line."""


def _doc(default, doc: str, **kw):
    return field(default=default, metadata={"doc": doc, **kw})


@dataclass
class Settings:
    host: str = _doc("0.0.0.0", "address the gRPC server binds to")
    grpc_port: int = _doc(50051, "gRPC port (0: pick a free one and log it)")
    metrics_host: str = _doc("0.0.0.0", "address the Prometheus /metrics endpoint binds to")
    metrics_port: int = _doc(9400, "Prometheus /metrics port (0: pick a free one; -1: no metrics endpoint)")
    model_dir: str = _doc(str(SHIPPED_MODEL), "model directory (model.onnx, vocab.txt, manifest.json)")
    int8: bool = _doc(False, "serve model.int8.onnx instead of model.onnx (a directory with only the int8 graph, like the shipped one, serves it either way)")
    provider: str = _doc("auto", "onnxruntime execution provider: auto (CUDA if usable and the graph is fp32, else CPU), cpu, cuda, tensorrt", choices=PROVIDERS)
    threads: int = _doc(1, "onnxruntime intra-op threads per inference (0: onnxruntime's default)")
    workers: str = _doc("1", "server processes sharing the gRPC port (SO_REUSEPORT), each with its own model, cache and "
                             "batcher, one /metrics for all; auto: one per core; at most 4 per core and one per 512 MB "
                             "of memory")
    max_batch: int = _doc(64, "most model steps run together in one onnxruntime call")
    max_wait_us: int = _doc(0, "how long a model step waits for others to batch with (microseconds)")
    cache_size: int = _doc(2048, "contexts kept in the state cache (about 43 kB each for the shipped model)")
    max_context_tokens: int = _doc(512, "only the last N tokens of the text feed the model")
    max_text_chars: int = _doc(8192, "longest text accepted (characters); longer is INVALID_ARGUMENT")
    max_suggestions: int = _doc(10, "most suggestions one request may ask for")
    dictionary: bool = _doc(True, "offer and correct to the words of the model's main dictionary (dictionary.txt) beside "
                                  "its vocabulary; off: the vocabulary alone")
    keyboard_layout: str = _doc(DEFAULT_LAYOUT, f"keyboard layout for typo tolerance when a request names none: "
                                                f"{', '.join(LAYOUTS)}", choices=tuple(LAYOUTS))
    max_queue: int = _doc(512, "model steps waiting at most; beyond, calls get RESOURCE_EXHAUSTED")
    max_concurrent_rpcs: int = _doc(2048, "RPCs at once at most, streams included; beyond, RESOURCE_EXHAUSTED at admission")
    max_streams: int = _doc(1000, "open typing sessions (streams) at most; beyond, RESOURCE_EXHAUSTED")
    max_message_bytes: int = _doc(65536, "largest gRPC message accepted or sent (bytes)")
    tls_cert: str = _doc("", "PEM certificate chain of the server: serve gRPC over TLS (with tls_key)")
    tls_key: str = _doc("", "PEM private key of the server certificate")
    tls_client_ca: str = _doc("", "PEM CA bundle: require client certificates signed by it (mutual TLS)")
    auth_token: str = _doc("", "shared token: calls must send metadata 'authorization: Bearer <token>' (health exempt)")
    data_dir: str = _doc("", "where the server keeps users.sqlite3 (empty: $XDG_DATA_HOME/nextword, "
                             "else ~/.local/share/nextword)")
    user_store: str = _doc("sqlite", "where users' models are kept: sqlite (a file in data_dir), redis (redis_url, shared "
                                     "by replicas) or off (no personal suggestions)", choices=("sqlite", "redis", "off"))
    redis_url: str = _doc("redis://localhost:6379/0", "the Redis server for user_store redis")
    user_keys: str = _doc("signed", "user keys: signed (by the app backend with the user secret) or open (any key is taken; "
                                    "only where every caller may act for every user)", choices=("signed", "open"))
    user_secret_file: str = _doc("", "the secret that signs user keys and seals stored words, kept apart from data_dir "
                                     "(empty: $XDG_CONFIG_HOME/nextword/user-secret, else ~/.config/nextword/user-secret; "
                                     "made if missing)")
    user_max_entries: int = _doc(50000, "entries (words and word pairs) one user keeps at most; older, rarer ones go first")
    user_ttl_days: float = _doc(180.0, "a user unseen this long is deleted from the store")
    user_cache_users: int = _doc(1000, "users' models kept in memory at most (least recently used go first)")
    user_min_count: int = _doc(MIN_COUNT, "times a user must send a word the model does not know before it is suggested to them")
    blocklist: str = _doc("default", "words never suggested or corrected to, unless the user sent them: a file (one word a "
                                     "line), default (the shipped list, model/engine/blocklist.txt) or none")
    grace_seconds: float = _doc(10.0, "on SIGTERM, how long calls in flight may take to finish")
    reflection: bool = _doc(True, "serve gRPC server reflection (for grpcurl and similar tools)")
    log_level: str = _doc("INFO", "log level: DEBUG, INFO, WARNING, ERROR")
    log_format: str = _doc("plain", "log format: plain or json (one JSON object per line)", choices=("plain", "json"))

    def validate(self) -> "Settings":
        positive = ("max_batch", "cache_size", "max_context_tokens", "max_text_chars", "max_suggestions",
                    "max_queue", "max_concurrent_rpcs", "max_streams", "max_message_bytes", "user_max_entries",
                    "user_cache_users", "user_min_count")
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name, lowest in (("grpc_port", 0), ("metrics_port", -1)):
            if not lowest <= getattr(self, name) <= 65535:
                raise SettingsError(f"{name} must be between {lowest} and 65535, got {getattr(self, name)}")
        worker_count(self.workers)  # auto or at least 1
        if self.threads < 0 or self.max_wait_us < 0 or self.grace_seconds < 0:
            raise SettingsError("threads, max_wait_us and grace_seconds must not be negative")
        if not self.user_ttl_days > 0:
            raise SettingsError(f"user_ttl_days must be more than 0, got {self.user_ttl_days}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError("tls_cert and tls_key go together: give both or neither")
        if self.tls_client_ca and not self.tls_cert:
            raise SettingsError("tls_client_ca (mutual TLS) needs tls_cert and tls_key as well")
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise SettingsError(f"{f.name} must be one of {', '.join(choices)}, got {getattr(self, f.name)!r}")
        return self


WORKERS_PER_CORE = 4          # more workers than this per core only queue for the cores
MEMORY_PER_WORKER = 512 << 20  # bytes a worker may grow to (model, caches, users' models: ~140 MB at start)


def cores() -> int:
    """The cores this process may run on (a container's limit where the kernel says it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def memory() -> int:
    """Bytes of memory of the machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def most_workers() -> int:
    """The bound on --workers: WORKERS_PER_CORE per core, and one per MEMORY_PER_WORKER."""
    return max(1, min(WORKERS_PER_CORE * cores(), memory() // MEMORY_PER_WORKER))


def worker_count(setting: str) -> int:
    """--workers: a number up to `most_workers()`, or auto (one per core)."""
    if setting == "auto":
        return min(cores(), most_workers())
    try:
        n = int(setting)
    except ValueError:
        n = 0
    if n < 1:
        raise SettingsError(f"workers must be auto or a number of at least 1, got {setting!r}")
    if n > most_workers():
        raise SettingsError(f"workers {n} is more than this machine takes: at most {most_workers()} "
                            f"({WORKERS_PER_CORE} per core for {cores()} cores, one per "
                            f"{MEMORY_PER_WORKER >> 20} MB of {memory() >> 30} GB memory)")
    return n


def data_path(s: Settings) -> Path:
    """The data directory (--data-dir, else the XDG one); a file there is a one-line mistake."""
    if s.data_dir:
        path = Path(s.data_dir).expanduser()
    else:
        path = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "nextword"
    if path.exists() and not path.is_dir():
        raise SettingsError(f"the data directory {path} is a file: give --data-dir a directory (made if missing)")
    return path


def config_path() -> Path:
    """Where the user secret is kept by default: the XDG config directory, apart from the data."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "nextword"


def user_secret_path(s: Settings) -> Path:
    """--user-secret-file, else the config directory's; an older deployment's secret in the data
    directory is still used (the server warns), so that its users' data stays theirs."""
    if s.user_secret_file:
        return Path(s.user_secret_file).expanduser()
    default, old = config_path() / "user-secret", data_path(s) / "user-secret"
    return old if old.exists() and not default.exists() else default


def _env_name(name: str) -> str:
    return "NEXTWORD_" + name.upper()


def _parse_bool(text: str) -> bool:
    low = str(text).strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field (--grpc-port ...), its default shown as the env variable's name."""
    for f in fields(Settings):
        flag, help_text = "--" + f.name.replace("_", "-"), f"{f.metadata['doc']} [env {_env_name(f.name)}, default {f.default}]"
        # default SUPPRESS: the help text states the default once (argparse would add "(default: None)")
        if f.type in (bool, "bool"):  # `--int8` alone means true; `--int8 false` is accepted too
            parser.add_argument(flag, dest=f.name, type=_parse_bool, nargs="?", const=True, default=argparse.SUPPRESS,
                                metavar="true|false", help=help_text)
            continue
        kind = {"int": int, "float": float}.get(str(f.type), str)
        parser.add_argument(flag, dest=f.name, type=kind, default=argparse.SUPPRESS, metavar=f.name.split("_")[-1].upper(),
                            choices=f.metadata.get("choices"), help=help_text)


def markdown_table() -> str:
    """The README's settings table, made from the fields (their docs are the one home):
    `python -m service.server.settings` prints it."""
    rows = ["| flag | variable | default | meaning |", "|---|---|---|---|"]
    for f in fields(Settings):
        default = "model/pretrained" if f.name == "model_dir" else f.default
        rows.append(f"| `--{f.name.replace('_', '-')}` | `{_env_name(f.name)}` | `{default}` | {f.metadata['doc']} |")
    return "\n".join(rows)


def from_args(args: argparse.Namespace | None = None, environ=os.environ) -> Settings:
    values = {}
    for f in fields(Settings):
        flag = getattr(args, f.name, None) if args is not None else None
        if flag is not None:
            values[f.name] = flag
        elif _env_name(f.name) in environ:
            raw = environ[_env_name(f.name)]
            try:
                values[f.name] = _parse_bool(raw) if f.type in (bool, "bool") else type(f.default)(raw)
            except (ValueError, argparse.ArgumentTypeError):
                raise SettingsError(f"{_env_name(f.name)}={raw!r} is not a valid {type(f.default).__name__}") from None
    return Settings(**values).validate()


if __name__ == "__main__":
    print(markdown_table())
