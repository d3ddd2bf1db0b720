"""`nextword type`, the terminal keyboard, driven key by key against a real server."""
import asyncio
import json
import subprocess
import sys
import time

import pexpect
import pyte
import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from conftest import ROOT, SHIPPED_MODEL, TINY_CORPUS, nextword
from helpers import ServerProcess
from model.data import load_text_files
from model.engine.text import normalize, token_spans
from service.client.connect import Connection
from service.keyboard.terminal import TerminalKeyboard, stray_logs_silenced

pytestmark = pytest.mark.slow  # see pyproject.toml

ALT = {0: "\x1b2", 1: "\x1b1", 2: "\x1b3"}  # rank -> Alt+slot (best is the middle slot, Alt+2)


async def settled(term, timeout=10.0):
    """Wait until the strip answers the current text."""
    kb = term.keyboard
    for _ in range(int(timeout / 0.005)):
        if kb.suggestions_for == kb.text:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"no suggestions for the text after {timeout} s: {term.status}")


async def press(term, keys: str, pipe) -> None:
    before = (term.keyboard.text, term.keyboard.keystrokes)
    pipe.send_text(keys)
    for _ in range(2000):
        if (term.keyboard.text, term.keyboard.keystrokes) != before:
            break
        await asyncio.sleep(0.005)
    await settled(term)


async def type_by_the_ksr_rule(term, pipe, message: str) -> None:
    """Before each letter of a word: accept the word if the strip shows it, else type the letter."""
    text = normalize(message)
    words = {start: (tok, end) for tok, start, end, is_word in token_spans(text) if is_word}
    pos, word_end, word = 0, None, None
    await settled(term)
    while pos < len(text):
        starts = [s for s in words if s <= pos < words[s][1]]
        if starts:
            word, word_end = words[starts[0]]
            shown = [s.text.lower() for s in term.keyboard.suggestions]
            if word.lower() in shown:
                await press(term, ALT[shown.index(word.lower())], pipe)
                pos = word_end + (1 if text[word_end : word_end + 1] == " " else 0)  # the space is free
                continue
        await press(term, text[pos], pipe)
        pos += 1


def test_savings_typed_in_the_terminal_equal_nextword_evaluate(server, tmp_path):
    messages = load_text_files([str(TINY_CORPUS)]).splits["test"][:6]

    async def session():
        with create_pipe_input() as pipe:
            term = TerminalKeyboard(Connection(server.address, 2.0), input=pipe, output=DummyOutput())
            term.app.ttimeoutlen = 0.05  # a lone Esc is recognised quickly
            running = asyncio.ensure_future(term.run())
            for message in messages:
                await type_by_the_ksr_rule(term, pipe, message)
                assert normalize(term.keyboard.text).rstrip().lower() == normalize(message).lower()
                pipe.send_text("\x1b")  # Esc: next message
                await asyncio.sleep(0.2)
                await settled(term)
            pipe.send_text("\x04")
            await running
            return term.keyboard

    keyboard = asyncio.run(session())
    typed = 1 - keyboard.session_keystrokes / keyboard.session_characters
    (tmp_path / "messages.txt").write_text("\n".join(messages) + "\n")
    nextword("evaluate", "--model-dir", SHIPPED_MODEL, "--messages", tmp_path / "messages.txt", "--json", tmp_path / "e.json")
    evaluated = json.loads((tmp_path / "e.json").read_text())["lstm"]
    assert keyboard.session_characters == evaluated["characters"]
    assert typed == pytest.approx(evaluated["ksr_3"], abs=1e-4)
    assert typed > 0.2


class Screen:
    """What a person would see: the pty's output run through a VT100 emulator."""

    def __init__(self, child, rows=10, cols=80):
        self.child, self.screen = child, pyte.Screen(cols, rows)
        self.stream = pyte.Stream(self.screen)

    def app_lines(self) -> list[str]:
        """The keyboard's lines, from its strip down: whatever was printed above it before it
        started (a line gRPC's C core logged, prompt_toolkit's CPR warning) is not its."""
        display = self.screen.display
        strip = next((i for i, line in enumerate(display) if line.startswith("[")), 0)
        return display[strip:]

    def wait_for(self, predicate, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=0.1))
            except pexpect.TIMEOUT:
                pass
            if predicate(self.app_lines()):
                return self.app_lines()
        raise AssertionError("screen never showed it:\n" + "\n".join(self.screen.display))


def test_in_a_real_terminal_suggestions_follow_keystrokes_and_tab_accepts(server):
    child = pexpect.spawn(sys.executable, ["-m", "nextword", "type", "--address", server.address],
                          cwd=str(ROOT), timeout=15, dimensions=(10, 80), encoding="utf-8")
    screen = Screen(child)
    try:
        screen.wait_for(lambda d: "connected to" in d[-1] or any("connected to" in line for line in d))
        child.send("how are yo")
        lines = screen.wait_for(lambda d: "how are yo_" in d[1] and "you" in d[0])
        completions = [w.strip() for w in lines[0].strip().strip("[]").split("|")]
        assert completions[1] == "you" and all(w.lower().startswith("yo") for w in completions if w)
        child.send("\t")  # accept the middle (best) suggestion: the word, a space, next words at once
        lines = screen.wait_for(lambda d: "how are you _" in d[1] and d[0] != lines[0] and d[0].strip("[]| "))
        assert "11 keys for 11 characters" in lines[2]  # 10 letters + 1 accept; the space was free
        child.send("\x04")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_in_a_real_terminal_typos_are_marked_autocorrected_on_space_and_undone(server):
    child = pexpect.spawn(sys.executable, ["-m", "nextword", "type", "--address", server.address],
                          cwd=str(ROOT), timeout=15, dimensions=(10, 80), encoding="utf-8")
    screen = Screen(child)
    try:
        screen.wait_for(lambda d: any("connected to" in line for line in d))
        child.send("how are ypu")
        lines = screen.wait_for(lambda d: "how are ypu_" in d[1] and "~you" in d[0])
        assert [w.strip() for w in lines[0].strip().strip("[]").split("|")][1] == "~you"  # a fix, marked
        child.send(" ")
        screen.wait_for(lambda d: "how are you _" in d[1] and "autocorrected" in d[2])
        child.send("\x7f")  # backspace right after: the word as typed comes back
        screen.wait_for(lambda d: "how are ypu _" in d[1])
        child.send("\x04")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_unreachable_server_is_reported_and_typing_resumes_when_it_is_back(tmp_path):
    server = ServerProcess("--model-dir", SHIPPED_MODEL)
    port = server.port
    server.stop()

    async def session():
        with create_pipe_input() as pipe:
            term = TerminalKeyboard(Connection(f"127.0.0.1:{port}", 1.0), input=pipe, output=DummyOutput())
            running = asyncio.ensure_future(term.run())
            for _ in range(400):
                if "unreachable" in term.status:
                    break
                await asyncio.sleep(0.01)
            assert "unreachable" in term.status
            pipe.send_text("how are yo")
            for _ in range(500):  # typing goes on while the server is away
                if term.keyboard.text == "how are yo":
                    break
                await asyncio.sleep(0.01)
            assert term.keyboard.text == "how are yo" and "unreachable" in term.status
            back = await asyncio.get_running_loop().run_in_executor(None, lambda: ServerProcess("--model-dir", SHIPPED_MODEL, "--grpc-port", port))
            try:
                await settled(term, timeout=15)
                assert "connected" in term.status and any(s.text == "you" for s in term.keyboard.suggestions)
            finally:
                pipe.send_text("\x04")
                await running
                back.stop()

    asyncio.run(session())


def test_in_a_real_terminal_enter_sends_and_the_user_model_learns_it(server):
    from pathlib import Path

    from service.client import NextWordClient, sign_user

    key = sign_user(Path(server.secret_file).read_bytes().strip(), "terminal-user")
    child = pexpect.spawn(sys.executable, ["-m", "nextword", "type", "--address", server.address, "--user", key],
                          cwd=str(ROOT), timeout=15, dimensions=(10, 80), encoding="utf-8")
    screen = Screen(child)
    try:
        screen.wait_for(lambda d: any("connected to" in line for line in d))
        for _ in range(2):  # a word the model does not know: suggested once sent twice (--user-min-count)
            child.send("dinner at Quorbly")
            screen.wait_for(lambda d: "dinner at Quorbly_" in d[1])
            child.send("\r")  # Enter: sent, learned for the user, and a new empty message
            screen.wait_for(lambda d: d[1].strip() == "_")
        child.send("see you at Quo")
        lines = screen.wait_for(lambda d: "see you at Quo_" in d[1] and "Quorbly" in d[0])
        assert [w.strip() for w in lines[0].strip().strip("[]").split("|")][1] == "Quorbly"
        child.send("\x18" + "2")  # Ctrl+X 2: remove the middle suggestion for this user
        screen.wait_for(lambda d: "see you at Quo_" in d[1] and "Quorbly" not in d[0] and "|" in d[0])
        child.send("\x0e")  # Ctrl+N: incognito
        screen.wait_for(lambda d: any("incognito" in line for line in d))
        child.send("\x1b")  # Esc: drop the message
        child.send("lunch with Vexquirtle\r")  # sent incognito: not learned
        screen.wait_for(lambda d: d[1].strip() == "_")
        child.send("\x04")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    with NextWordClient(server.address) as client:
        stored = client.export(key)
    assert stored["suppressed"] == ["quorbly"] and not [e for e in stored["entries"] if "vexquirtle" in e["text"].lower()]


def test_a_narrow_terminal_still_shows_the_best_suggestion(server):
    child = pexpect.spawn(sys.executable, ["-m", "nextword", "type", "--address", server.address],
                          cwd=str(ROOT), timeout=15, dimensions=(10, 24), encoding="utf-8")
    screen = Screen(child, cols=24)
    try:
        screen.wait_for(lambda d: d and d[0].strip("[]| "))  # the first strip: connected
        child.send("how are yo")
        lines = screen.wait_for(lambda d: "how are yo_" in d[1] and "you" in d[0])
        assert [w.strip() for w in lines[0].strip().strip("[]").split("|")][1] == "you"  # the middle, whole
    finally:
        child.close(force=True)


def test_without_a_terminal_it_says_so(server):
    proc = subprocess.run([sys.executable, "-m", "nextword", "type", "--address", server.address], cwd=ROOT,
                          input="hi\n", capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "terminal" in proc.stderr and "Traceback" not in proc.stderr


def test_stray_stderr_lines_stay_off_the_keyboard_screen(capfd):
    """gRPC's C core sometimes logs to stderr (an "epoll_ctl failed" line broke the screen of
    a loaded test run): while the keyboard runs, fd 2 goes nowhere; afterwards it is back."""
    import os

    with stray_logs_silenced():
        os.write(2, b"E1127 ev_epoll1_linux.cc:309] epoll_ctl failed\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
