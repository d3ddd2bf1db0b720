"""The web typing page in a real headless Chromium, through `nextword web` to a real server."""
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import ROOT

pytestmark = pytest.mark.slow  # see pyproject.toml

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def page_url(server):
    web = subprocess.Popen([sys.executable, "-m", "nextword", "web", "--address", server.address, "--port", "0"],
                           cwd=ROOT, stdout=subprocess.PIPE, text=True)
    url = re.search(r"(http://\S+/)", web.stdout.readline()).group(1)
    yield url
    web.terminate()
    web.wait(10)


def post(url, body, path="api/predict", raw: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url + path, data=raw if raw is not None else json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_json_endpoint(page_url):
    status, body = post(page_url, {"text": "how are yo"})
    assert status == 200 and body["replace"] == 2 and body["suggestions"][0]["text"] == "you"
    assert body["autocorrect"] is None
    status, body = post(page_url, {"text": "how are ypu "})
    assert status == 200 and body["autocorrect"]["replacement"] == "you" and body["autocorrect"]["separator_length"] == 1
    assert post(page_url, {"text": "hi", "k": 50})[0] == 400          # INVALID_ARGUMENT from the server
    assert post(page_url, {"text": 5})[0] == 400


def test_the_gateway_answers_every_bad_request_in_json(page_url):
    for body in ({"text": "hi", "k": True}, {"text": "hi", "k": 0}, {"text": "hi", "incognito": "yes"}, [1, 2]):
        status, answer = post(page_url, body)
        assert status == 400 and answer["error"].startswith("bad request"), (body, answer)
    assert post(page_url, None, raw=b"not json")[0] == 400
    assert post(page_url, None, raw=b"{}", headers={"Content-Length": "x"})[0] == 400
    assert post(page_url, {"word": "hi"}, path="api/forget") == (400, {"error": "bad request: no user to remove a "
                                                                           "suggestion for: start nextword web with --user"})
    with urllib.request.urlopen(page_url + "favicon.ico", timeout=5) as r:
        assert r.status == 204
    assert post(page_url, {"text": "how are yo"})[0] == 200  # and it serves on


def test_an_unsigned_user_key_is_refused_at_start(server):
    proc = subprocess.run([sys.executable, "-m", "nextword", "web", "--address", server.address, "--port", "0",
                           "--user", "bob"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "does not take this --user key" in proc.stderr and "Traceback" not in proc.stderr


def test_type_see_a_completion_click_it_see_next_words(page_url, tmp_path):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 420, "height": 420})
        page.goto(page_url)
        page.locator("#text").press_sequentially("how are yo", delay=20)
        best = page.locator("#strip button.best")
        expect(best).to_have_text("you")
        completions = page.locator("#strip button.word").all_inner_texts()
        assert all(w.lower().startswith("yo") for w in completions if w)
        best.click()
        expect(page.locator("#text")).to_have_value("how are you ")
        expect(page.locator("#status")).to_contain_text("11 keys for 11 characters")
        expect(best).not_to_have_text("you")  # now the next-word strip
        next_words = page.locator("#strip button.word").all_inner_texts()
        assert all(next_words) and not any(w.lower().startswith("yo") and w != "you" for w in next_words)
        page.locator("#text").press_sequentially("do", delay=20)
        page.keyboard.press("Tab")  # Tab accepts the middle one
        expect(page.locator("#text")).to_have_value(re.compile(r"^how are you do\S* $"))
        page.screenshot(path=os.environ.get("NEXTWORD_SCREENSHOT") or str(tmp_path / "web.png"))  # README's: docs/web.png
        browser.close()


def test_a_typo_is_offered_as_a_correction_autocorrected_on_space_and_undone_by_backspace(page_url):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(page_url)
        text = page.locator("#text")
        text.press_sequentially("how are ypu", delay=20)
        best = page.locator("#strip button.best")
        expect(best).to_have_text("you")
        expect(best).to_have_class(re.compile(r"\bcorrection\b"))  # shown as a fix, not a completion
        text.press_sequentially(" ", delay=20)
        expect(text).to_have_value("how are you ")  # autocorrected on space
        page.keyboard.press("Backspace")
        expect(text).to_have_value("how are ypu ")  # the backspace right after takes it back
        page.wait_for_timeout(300)
        expect(text).to_have_value("how are ypu ")  # and it is not corrected again
        browser.close()


def test_send_learns_the_message_for_the_pages_user(server):
    from pathlib import Path

    from service.client import sign_user

    key = sign_user(Path(server.secret_file).read_bytes().strip(), "web-user")
    web = subprocess.Popen([sys.executable, "-m", "nextword", "web", "--address", server.address, "--port", "0",
                            "--user", key], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"(http://\S+/)", web.stdout.readline()).group(1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 420, "height": 420})
            page.goto(url)
            text = page.locator("#text")
            for _ in range(2):  # a word the model does not know: suggested once sent twice (--user-min-count)
                text.press_sequentially("lunch at Wubbleton", delay=10)
                expect(page.locator("#strip button.best")).not_to_have_text("Wubbleton")  # typing alone learns nothing
                page.locator("#send").click()
                expect(text).to_have_value("")  # sent: a new, empty message
            text.press_sequentially("see you at Wub", delay=20)
            best = page.locator("#strip button.best")
            expect(best).to_have_text("Wubbleton")
            page.locator("#strip button.remove[data-rank='0']").click()  # the x: remove this suggestion
            expect(best).not_to_have_text("Wubbleton")
            page.locator("#incognito").check()
            text.fill("")
            text.press_sequentially("dinner with Glorpington", delay=10)
            page.keyboard.press("Enter")  # Enter sends too; incognito: nothing learned
            expect(text).to_have_value("")
            browser.close()
        from service.client import NextWordClient

        with NextWordClient(server.address) as client:
            stored = client.export(key)
        assert "Glorpington" not in {e["text"] for e in stored["entries"]} and stored["suppressed"] == ["wubbleton"]
    finally:
        web.terminate()
        web.wait(10)
