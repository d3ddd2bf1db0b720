"""`nextword type`: a terminal keyboard with a suggestion strip that follows every keystroke.

    [   your   |   you   |   yourself   ]     <- most likely in the middle, as on a phone
    how are yo_
    42 keys for 80 characters: 47% saved | 0.6 ms | connected to localhost:50051

Tab accepts the middle suggestion, Alt+1/2/3 the left/middle/right one (replacing the
partial word and adding a space, after which the next-word strip appears at once). A
suggestion that fixes a typo is marked "~" and underlined; a mistyped word is
autocorrected on space, and a backspace right after takes that back. Enter sends the
message (with --user KEY the server learns it for that user, whose words then come up in
the strip) and starts a new one; Esc drops it unsent; Ctrl+C or Ctrl+D quits. With a user,
Ctrl+X then 1/2/3 removes the left/middle/right suggestion for them ("remove this
suggestion"), and Ctrl+N switches incognito on and off (nothing of the user read or
learned, even on Enter). The strip fits the terminal's width. It talks
over PredictStream, sending only what changed, so each keystroke costs the server at most
one model step. When the server cannot be reached it says so and keeps retrying; typing
goes on meanwhile.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time

import grpc
from prompt_toolkit.application import Application
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.layout import HSplit, Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl

from service.client import ClientError
from service.client.connect import Connection, add_address_flags, check_user, connection, first_contact
from service.keyboard.state import Keyboard, strip_order

SLOT_WIDTH = 16   # columns of a slot, at most; narrower terminals get narrower slots
NARROWEST = 4     # below this a slot, only the middle (best) suggestion is shown
SLOTS = (("1", 0), ("2", 1), ("3", 2))  # keys for the left, middle and right slots


def add_arguments(p) -> None:
    p.add_argument("--user", default="", help="type as this user (a signed key: nextword user-key NAME); Enter sends and learns")
    add_address_flags(p, timeout=2.0)


def edit_between(old: str, new: str) -> tuple[int, str]:
    """(characters to delete from the end of old, text to append) to turn old into new."""
    common = 0
    for a, b in zip(old, new):
        if a != b:
            break
        common += 1
    return len(old) - common, new[common:]


class TerminalKeyboard:
    def __init__(self, conn: Connection, user: str = "", **app_options):
        self.conn, self.user = conn, user
        self.address, self.timeout = conn.address, conn.timeout
        self.keyboard = Keyboard()
        self.outbox: list[str] = []  # messages sent (Enter), for the server to learn
        self.removals: list[str] = []  # suggestions removed (Ctrl+X 1/2/3), for the server to forget
        self.incognito = False
        self.status = "connecting"
        self.latency_ms: float | None = None
        self.changed = asyncio.Event()
        self.app = Application(layout=self._layout(), key_bindings=self._bindings(), full_screen=False, **app_options)

    # ---- drawing --------------------------------------------------------------------

    def shown(self) -> list:
        """The three slots of the strip (None where empty), if it answers the text as it is."""
        kb = self.keyboard
        return strip_order(kb.suggestions) if kb.suggestions_for == kb.text else [None, None, None]

    def _strip(self):
        columns = self.app.output.get_size().columns
        width = min(SLOT_WIDTH, (columns - 4) // 3)
        slots = self.shown() if width >= NARROWEST else self.shown()[1:2]  # too narrow: the best one alone
        width = width if width >= NARROWEST else max(columns - 2, 1)
        fragments = [("class:strip", "[")]
        for i, s in enumerate(slots):
            correction = s is not None and s.kind == "correction"  # marked "~" and underlined: a fix of a typo
            label = ("~" + s.text if correction else s.text) if s else ""
            fragments += [("class:strip", "|")] if i else []
            fragments.append(("class:strip underline" if correction else "class:strip", label.center(width)[:width]))
        return fragments + [("class:strip", "]")]

    def _status(self):
        kb = self.keyboard
        now, session = kb.savings()
        latency = f"{self.latency_ms:.1f} ms" if self.latency_ms is not None else "-"
        if kb.undo and kb.undo[0] == kb.text:
            latency += " | autocorrected (backspace undoes)"
        if self.incognito:
            latency += " | incognito"
        return (f"{kb.keystrokes} keys for {kb.characters()} characters: {now:.0%} saved "
                f"(session {session:.0%}) | {latency} | {self.status}")

    def _layout(self) -> Layout:
        text = FormattedTextControl(lambda: self.keyboard.text + "_", focusable=True)
        return Layout(HSplit([
            Window(FormattedTextControl(self._strip), height=1),
            Window(text, wrap_lines=True),
            Window(FormattedTextControl(self._status), height=1, style="reverse"),
        ]))

    # ---- keys -------------------------------------------------------------------------

    def _bindings(self) -> KeyBindings:
        kb = KeyBindings()

        def after(event):
            self.changed.set()
            event.app.invalidate()

        @kb.add("<any>")
        def _(event):
            for key in event.key_sequence:
                if len(key.data) == 1 and key.data.isprintable():
                    self.keyboard.type(key.data)
            after(event)

        @kb.add("backspace")
        def _(event):
            self.keyboard.backspace()
            after(event)

        @kb.add("tab")
        def _(event):
            self.keyboard.accept(0)
            after(event)

        for slot, rank in (("1", 1), ("2", 0), ("3", 2)):  # left, middle (best), right
            @kb.add("escape", slot)
            def _(event, rank=rank):
                self.keyboard.accept(rank)
                after(event)

        @kb.add("escape")
        def _(event):
            self.keyboard.clear()
            after(event)

        @kb.add("enter")
        def _(event):
            if self.keyboard.text.strip():
                self.outbox.append(self.keyboard.text)
                self.keyboard.clear()
            after(event)

        self._user_keys(kb, after)

        @kb.add("c-c")
        @kb.add("c-d")
        def _(event):
            event.app.exit()

        return kb

    def _user_keys(self, kb: KeyBindings, after) -> None:
        """Keys that act for the user: remove a suggestion, incognito."""
        for key, slot in SLOTS:
            @kb.add("c-x", key)
            def _(event, slot=slot):
                chosen = self.shown()[slot]
                if chosen is not None and self.user:
                    self.removals.append(chosen.text)
                elif chosen is not None:
                    self.status = "no user to remove a suggestion for: start nextword type with --user"
                after(event)

        @kb.add("c-n")
        def _(event):
            self.incognito = not self.incognito
            after(event)

    # ---- talking to the server ----------------------------------------------------------

    async def sync(self) -> None:
        """Keep the strip in step with the text over one stream; reconnect when it breaks."""
        async with self.conn.async_client() as client:
            session, sent = None, ""
            self.changed.set()
            while True:
                await self.changed.wait()
                self.changed.clear()
                text, accepted = self.keyboard.text, self.keyboard.accepted
                self.keyboard.accepted = False  # told with this change: evidence for the user's model
                try:
                    started = time.perf_counter()
                    if session is None:
                        session, sent = client.session(k=3, user=self.user), None
                    session.incognito = self.incognito
                    while self.removals:
                        await asyncio.wait_for(client.forget(self.user, word=self.removals[0]), self.timeout)
                        self.removals.pop(0)
                        sent = None  # ask again: the strip changes for this user
                    while self.outbox:  # the stream's text becomes the message, then it is sent
                        if sent != self.outbox[0]:
                            await asyncio.wait_for(session.text(self.outbox[0]), self.timeout)
                        await asyncio.wait_for(session.send(), self.timeout)
                        self.outbox.pop(0)
                        sent = ""
                    if sent is None:
                        suggestions = await asyncio.wait_for(session.text(text, accepted), self.timeout)
                    else:
                        delete, insert = edit_between(sent, text)
                        suggestions = await asyncio.wait_for(session.edit(delete, insert, accepted), self.timeout)
                    sent = text
                    self.latency_ms = (time.perf_counter() - started) * 1e3
                    if self.keyboard.show(suggestions, text):  # autocorrected: ask again for the new text
                        self.changed.set()
                    self.status = f"connected to {self.address}"
                except Exception as e:  # RPC error, deadline, closed stream: all mean reconnect
                    self.status = f"server unreachable at {self.address} ({_reason(e)}); retrying"
                    session = None
                    self.app.invalidate()
                    await asyncio.sleep(1.0)
                    self.changed.set()
                self.app.invalidate()

    async def run(self) -> None:
        syncing = asyncio.ensure_future(self.sync())
        try:
            await self.app.run_async()
        finally:
            syncing.cancel()
            await asyncio.gather(syncing, return_exceptions=True)


def _reason(error: Exception) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code().name
    return type(error).__name__


@contextlib.contextmanager
def stray_logs_silenced():
    """While the full-screen keyboard runs, what C libraries write to stderr (gRPC's own
    log lines, such as "epoll_ctl failed") would land in the middle of its screen: they go
    to /dev/null. Our errors show in the status line; a Python error leaving the block is
    printed after stderr is back."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def main(args) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ClientError("nextword type is a keyboard for a terminal: run it in one, with no pipe or file "
                          "(to ask for suggestions from a script: nextword predict)")
    conn = connection(args)
    first_contact(conn)  # at start only: later outages are shown in the status line
    with conn.client() as client:
        check_user(client, args.user)
    with stray_logs_silenced():
        asyncio.run(TerminalKeyboard(conn, args.user).run())
    return 0
