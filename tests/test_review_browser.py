"""The review app in a real browser: headless Chromium (Debian's chromium + chromedriver, driven by Selenium)
against `labelmill review` served by uvicorn in its own process on 127.0.0.1, over a real SQLite store.

The model is the fake keyword backend (the same registry as llama.cpp): what is tested here is the app.
Set LABELMILL_SCREENSHOT=docs/review.png to save the README's screenshot from the keyboard test.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CONFIG = """\
task: classification
name: movie-reviews
labels:
  - name: positive
  - name: negative
guidelines: |
  Classify the sentiment of the movie review. Irony counts as what the writer means.
input_template: "{text}"
gold_column: label
examples: {k: 0}
model:
  backend: fake
  params: {keywords: {positive: [good, great, moving], negative: [bad, awful, dull]}}
"""

ROWS = [
    ("<script>window.__xss = 1; alert('xss')</script>", "negative"),
    ('<img src=x onerror="window.__xss = 2"> a film', "positive"),
] + [(f"review {i}: a {w} film with {x} moments", lab) for i, (w, x, lab) in enumerate(
    [("good", "some", "positive"), ("awful", "few", "negative"), ("fine", "quiet", "positive"), ("so-so", "long", "negative"),
     ("great", "moving", "positive"), ("dull", "bad", "negative"), ("odd", "strange", "positive"), ("plain", "flat", "negative")] * 3)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, *extra: str, annotators=("ana",)):
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tokens_file = tmp / f"tokens-{self.port}.json"
        args = [sys.executable, "-m", "labelmill", "review", str(tmp / "config.yaml"), str(tmp / "rows.csv"), "--project", str(tmp / "project.db"),
                "--port", str(self.port), "--tokens", str(self.tokens_file), "--no-student", "--batch", "3", *extra,
                *(() if "--audit" in extra else ("--audit", "0"))]  # (tests that read the queue's order; an audit row is random)
        for name in annotators:
            args += ["--annotator", name]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"labelmill review exited: {self.proc.stdout.read()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("labelmill review did not start")
        self.links = json.loads(self.tokens_file.read_text())

    def token(self, name: str) -> str:
        return self.links[name].split("token=", 1)[1]

    def request(self, path: str, *, token: str | None = None, method: str = "GET", body=None, csrf: str | None = None) -> tuple[int, bytes]:
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if csrf:
            headers["X-CSRF-Token"] = csrf
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def csrf(self, token: str) -> str:
        _, page = self.request("/", token=token)
        return json.loads(html.unescape(re.search(r'data-config="([^"]+)"', page.decode()).group(1)))["csrf"]

    def status(self, token: str) -> dict:
        return json.loads(self.request("/api/status", token=token)[1])

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve(tmp: Path, config: str, rows: list[dict]) -> Server:
    """Write the config and the rows (CSV) and start `labelmill review` on them."""
    (tmp / "config.yaml").write_text(config)
    with (tmp / "rows.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return Server(tmp)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "config.yaml").write_text(CONFIG)
    with (tmp_path / "rows.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(ROWS)
    return tmp_path


@pytest.fixture
def server(workdir):
    s = Server(workdir)
    yield s
    s.stop()


def chrome(download_dir: Path | None = None):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    assert binary and driver_path, "the browser tests need Debian's chromium and chromium-driver (scripts/install.sh --test installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    if download_dir is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(download_dir), "download.prompt_for_download": False})
    return webdriver.Chrome(service=Service(driver_path), options=options)


def wait_for(driver, predicate, timeout: float = 20.0):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def check(d):
        try:
            return predicate(d)
        except IndexError:
            return False

    # the page re-renders the row after each answer: an element read mid-render is stale, so look again
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)).until(check)


def status_text(driver) -> str:
    return driver.find_element("id", "status").text


def row_index(driver) -> int | None:
    text = driver.find_element("id", "row").text
    m = re.search(r"row (\d+)", text)
    return int(m.group(1)) if m else None


def test_review_five_rows_with_the_keyboard_reload_and_export(server, workdir):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    downloads = workdir / "downloads"
    downloads.mkdir()
    driver = chrome(downloads)
    try:
        driver.get(server.links["ana"])
        wait_for(driver, lambda d: d.find_elements("id", "row-text"))
        seen = []
        for n in range(5):
            index = row_index(driver)
            seen.append(index)
            key = "2" if n % 2 else "1"  # 1 = positive, 2 = negative
            ActionChains(driver).send_keys(key).perform()
            wait_for(driver, lambda d: "picked" in d.find_elements("css selector", "#labels button")[int(key) - 1].get_attribute("class"))
            ActionChains(driver).send_keys(Keys.ENTER).perform()
            wait_for(driver, lambda d, i=index: f"saved row {i}" in status_text(d))
        assert len(set(seen)) == 5
        assert "reviewed 5 (5 by you)" in status_text(driver)
        # Z undoes the last one, Enter on the row it brings back saves it again
        ActionChains(driver).send_keys("z").perform()
        wait_for(driver, lambda d: f"undid row {seen[-1]}" in status_text(d) and row_index(d) == seen[-1])
        ActionChains(driver).send_keys("2", Keys.ENTER).perform()
        wait_for(driver, lambda d: f"saved row {seen[-1]}" in status_text(d))
        if os.environ.get("LABELMILL_SCREENSHOT"):
            Path(os.environ["LABELMILL_SCREENSHOT"]).parent.mkdir(parents=True, exist_ok=True)
            assert driver.save_screenshot(str(Path(os.environ["LABELMILL_SCREENSHOT"]).resolve()))
        driver.refresh()
        wait_for(driver, lambda d: d.find_elements("id", "row-text") and "reviewed 5" in status_text(d))
        # the page's export link downloads the reviewed dataset
        driver.find_element("id", "export-jsonl").click()
        wait_for(driver, lambda d: [p for p in downloads.glob("*.jsonl")], timeout=30)
        lines = [json.loads(line) for line in next(downloads.glob("*.jsonl")).read_text().splitlines()]
        reviewed = {i: r["review_label"] for i, r in enumerate(lines) if r["review_status"] == "reviewed"}
        assert sorted(reviewed) == sorted(seen)
        assert [reviewed[i] for i in seen] == ["positive", "negative", "positive", "negative", "negative"]
    finally:
        driver.quit()


def test_hostile_rows_are_shown_as_text(server):
    driver = chrome()
    try:
        driver.get(server.links["ana"])
        wait_for(driver, lambda d: d.find_elements("id", "row-text"))
        shown = driver.find_element("id", "row-text").text
        assert shown == ROWS[0][0]  # the fake model has no word for it: tied, so it leads the queue
        assert driver.execute_script("return window.__xss === undefined")
        assert not driver.find_elements("css selector", "#row script, #row img")
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        ActionChains(driver).send_keys("2", Keys.ENTER).perform()
        wait_for(driver, lambda d: d.find_element("id", "row-text").text == ROWS[1][0])
        assert driver.execute_script("return window.__xss === undefined")
        assert not driver.find_elements("css selector", "#row img")
    finally:
        driver.quit()


def test_a_row_is_shown_honestly_hidden_characters_marked_and_a_long_word_wrapped(tmp_path):
    """A bidi override makes "a boring film" display as "a gnirob film"; the page marks it. A 300,000-character
    row with no space wraps inside the page instead of making it 300,000 characters wide."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    rows = [{"text": "x" * 300_000, "label": "negative"}, {"text": "a great film \u202eboring\u200b", "label": "negative"}]
    server = serve(tmp_path, CONFIG, rows)
    driver = chrome()
    try:
        driver.get(server.links["ana"])
        wait_for(driver, lambda d: d.find_elements("id", "row-text"))
        assert len(driver.find_element("id", "row-text").text) >= 300_000
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 20")
        assert not driver.find_elements("css selector", ".hidden-chars")
        ActionChains(driver).send_keys("2", Keys.ENTER).perform()
        wait_for(driver, lambda d: "great" in d.find_element("id", "row-text").text)
        assert driver.find_element("id", "row-text").text == "a great film [U+202E]boring[U+200B]"
        assert "2 invisible or direction-changing characters" in driver.find_element("css selector", ".hidden-chars").text
    finally:
        driver.quit()
        server.stop()


def test_an_annotator_left_off_the_command_line_loses_their_token_unless_tokens_are_kept(workdir):
    first = Server(workdir, annotators=("ana", "bob"))
    bob = first.token("bob")
    assert first.request("/api/status", token=bob)[0] == 200
    first.stop()
    kept = Server(workdir, "--keep-tokens", annotators=("ana",))
    assert kept.request("/api/status", token=bob)[0] == 200
    kept.stop()
    second = Server(workdir, annotators=("ana",))
    try:
        assert second.request("/api/status", token=bob)[0] == 401
        assert second.request("/api/status", token=second.token("ana"))[0] == 200
    finally:
        second.stop()
    with sqlite3.connect(workdir / "project.db") as db:
        assert db.execute("SELECT COUNT(*) FROM review_annotators WHERE name = 'bob'").fetchone()[0] == 0


def test_tokens_csrf_and_static_paths_over_http(server):
    token = server.token("ana")
    assert server.request("/")[0] == 401
    assert server.request("/api/status")[0] == 401
    assert server.request("/api/status", token="not-a-token")[0] == 401
    assert server.request("/api/status", token=token)[0] == 200
    assert server.request("/api/review", token=token, method="POST", body={"row": 2, "label": "positive"})[0] == 403
    assert server.request("/api/review", token=token, method="POST", body={"row": 2, "label": "positive"}, csrf="f" * 64)[0] == 403
    assert server.request("/api/review", token=token, method="POST", body={"row": 2, "label": "positive"}, csrf=server.csrf(token))[0] == 200
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2f..%2fconfig.py", "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc/passwd"):
        assert server.request(path, token=token)[0] == 404, path
    assert server.request("/static/review.js")[0] == 200


def test_two_annotators_at_once_both_saved_and_agreement(workdir):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    server = Server(workdir, "--overlap", "2", annotators=("ana", "bob"))
    drivers = [chrome(), chrome()]
    try:
        for driver, name in zip(drivers, ("ana", "bob")):
            driver.get(server.links[name])
            wait_for(driver, lambda d: d.find_elements("id", "row-text"))
        rows = {"ana": [], "bob": []}
        for step in range(4):
            for driver, name in zip(drivers, ("ana", "bob")):
                rows[name].append(row_index(driver))
                key = "1" if (name == "ana" or step % 2 == 0) else "2"  # they disagree on two rows
                ActionChains(driver).send_keys(key, Keys.ENTER).perform()
            for driver, name in zip(drivers, ("ana", "bob")):
                wait_for(driver, lambda d, i=rows[name][-1]: f"saved row {i}" in status_text(d))
        status = server.status(server.token("ana"))
        assert status["reviews"] == 8
        both = set(rows["ana"]) & set(rows["bob"])
        assert len(both) >= 2  # overlap 2: the same rows reach both people
        agreement = status["agreement"]
        assert agreement["items_with_overlap"] == len(both)
        assert agreement["cohen"] and agreement["cohen"][0]["annotators"] == ["ana", "bob"]
        assert agreement["krippendorff_alpha"] is not None
        assert status["conflicts"] >= 1
    finally:
        for driver in drivers:
            driver.quit()
        server.stop()


def test_kill_9_loses_no_committed_review(workdir):
    server = Server(workdir)
    token = server.token("ana")
    csrf = server.csrf(token)
    saved = []
    for _ in range(4):
        row = json.loads(server.request("/api/next", token=token)[1])["row"]
        code, _ = server.request("/api/review", token=token, method="POST", body={"row": row["index"], "label": "negative"}, csrf=csrf)
        assert code == 200
        saved.append(row["index"])
    server.stop(signal.SIGKILL)
    assert server.proc.returncode == -signal.SIGKILL
    again = Server(workdir)  # same project; new tokens for the same annotator
    try:
        status = again.status(again.token("ana"))
        assert status["reviewed"] == 4
        from labelmill.store import Store
        from labelmill.strategies.review.log import ReviewLog

        with Store(workdir / "project.db") as store:
            run_id = store.runs()[-1]["id"]
            assert sorted(ReviewLog(store, run_id).final()[0]) == sorted(saved)
    finally:
        again.stop()


SELECT_TEXT = """
    const box = document.getElementById('row-text'); const want = arguments[0];
    const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT); let node;
    while ((node = walker.nextNode())) { const at = node.textContent.indexOf(want);
      if (at >= 0) { const r = document.createRange(); r.setStart(node, at); r.setEnd(node, at + want.length);
        const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r); return true; } }
    return false;"""


NER_CONFIG = """\
task: ner
name: news-entities
labels: [PER, ORG, LOC, MISC]
guidelines: Mark people, organisations, places and other names.
input_template: "{text}"
examples: {k: 0}
model:
  backend: fake
  params: {replies: [], default_reply: "none"}
"""


def test_ner_view_adds_and_removes_spans_by_selection(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    (tmp_path / "config.yaml").write_text(NER_CONFIG)
    with (tmp_path / "rows.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text"])
        writer.writerows([["SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT ."], ["Nadim Ladki"]])
    server = Server(tmp_path)
    driver = chrome()
    select = SELECT_TEXT
    try:
        driver.get(server.links["ana"])
        wait_for(driver, lambda d: "SOCCER" in d.find_element("id", "row-text").text)
        assert driver.execute_script(select, "JAPAN")
        ActionChains(driver).send_keys("3").perform()  # LOC
        wait_for(driver, lambda d: [e.text for e in d.find_elements("css selector", "#row-text .span")] == ["JAPAN"])
        assert driver.execute_script(select, "CHINA")
        ActionChains(driver).send_keys("1").perform()  # PER, a wrong type on purpose
        wait_for(driver, lambda d: len(d.find_elements("css selector", "#row-text .span")) == 2)
        driver.find_elements("css selector", "#row-text .span")[1].click()  # remove it again
        wait_for(driver, lambda d: len(d.find_elements("css selector", "#row-text .span")) == 1)
        assert driver.execute_script(select, "CHINA")
        ActionChains(driver).send_keys("3").perform()
        wait_for(driver, lambda d: len(d.find_elements("css selector", "#row-text .span")) == 2)
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        wait_for(driver, lambda d: "saved row 0" in status_text(d))
        from labelmill.store import Store
        from labelmill.strategies.review.log import ReviewLog

        with Store(tmp_path / "project.db") as store:
            saved = ReviewLog(store, store.runs()[-1]["id"]).final()[0][0]
        assert [(s["start"], s["end"], s["type"], s["text"]) for s in saved] == [(9, 14, "LOC", "JAPAN"), (31, 36, "LOC", "CHINA")]
    finally:
        driver.quit()
        server.stop()


QA_CONFIG = """\
task: qa
name: qa-review
qa: {mode: extractive, context_column: context, question_column: question, allow_unanswerable: true, verify: false}
input_template: "Context: {context}\\nQuestion: {question}"
gold_column: all_answers
examples: {k: 0}
model:
  backend: fake
  method: generate
  params: {replies: [["Who led", "in Germany"], ["Saxons", "the Normans"]], default_reply: "unanswerable"}
"""


def test_qa_view_selects_the_answer_or_marks_it_unanswerable(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    rows = [{"context": "The Norse raiders were led by Rollo.", "question": "Who led the raiders?", "all_answers": '["Rollo"]'},
            {"context": "The Normans spoke French.", "question": "What did the Saxons speak?", "all_answers": "[]"}]
    server = serve(tmp_path, QA_CONFIG, rows)
    driver = chrome()
    select = """
        const box = document.getElementById('row-text'); const node = box.firstChild; const at = node.textContent.indexOf(arguments[0]);
        const r = document.createRange(); r.setStart(node, at); r.setEnd(node, at + arguments[0].length);
        const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r); return at;"""
    try:
        driver.get(server.links["ana"])
        wait_for(driver, lambda d: "Question:" in d.find_element("id", "row-text").text)
        first = row_index(driver)
        answers = {0: ("Rollo", "a"), 1: ("", "u")}  # select the answer and press A, or press U: unanswerable
        want, key = answers[first]
        if want:
            assert driver.execute_script(select, want) >= 0
        ActionChains(driver).send_keys(key).perform()
        wait_for(driver, lambda d: ("answer: " + (want or "(unanswerable)")) in d.find_element("id", "labels").text)
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        wait_for(driver, lambda d: f"saved row {first}" in status_text(d))
        second = 1 - first
        want, key = answers[second]
        wait_for(driver, lambda d: row_index(d) == second)
        if want:
            assert driver.execute_script(select, want) >= 0
        ActionChains(driver).send_keys(key, Keys.ENTER).perform()
        wait_for(driver, lambda d: f"saved row {second}" in status_text(d))
        from labelmill.store import Store
        from labelmill.strategies.review.log import ReviewLog

        with Store(tmp_path / "project.db") as store:
            assert ReviewLog(store, store.runs()[-1]["id"]).final()[0] == {0: "Rollo", 1: ""}
    finally:
        driver.quit()
        server.stop()


RELATION_CONFIG = """\
task: relation
name: pair-review
relation:
  types:
    - {name: Cause-Effect, description: "{head} causes {tail}"}
    - {name: Component-Whole, description: "{head} is part of {tail}"}
    - {name: Content-Container, description: "{head} is inside {tail}"}
    - {name: Entity-Origin, description: "{head} comes from {tail}"}
    - {name: Message-Topic, description: "{head} is about {tail}"}
gold_column: relation
examples: {k: 0}
model:
  backend: fake
  params: {keywords: {"Cause-Effect(e1,e2)": [causes], "Component-Whole(e1,e2)": [part]}}
"""

def test_relation_view_highlights_the_pair_and_picks_labels_past_nine_by_keyboard(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    hostile = '<img src=x onerror="window.__xss = 3">'
    rows = [{"text": "Smoke causes cancer.", "e1": "Smoke", "e2": "cancer"},
            {"text": f"The {hostile} was found in a <b>box</b>.", "e1": hostile, "e2": "<b>box</b>"},
            {"text": "The letter came from Rome.", "e1": "letter", "e2": "Rome"}]
    server = serve(tmp_path, RELATION_CONFIG, rows)
    driver = chrome()
    # labels: Cause-Effect(e1,e2) 1, (e2,e1) 2, Component-Whole 3 4, Content-Container 5 6, Entity-Origin 7 8, Message-Topic 9 10, Other 11
    keys = {0: (["1"], "Cause-Effect(e1,e2)"), 1: (["5"], "Content-Container(e1,e2)"), 2: (["7"], "Entity-Origin(e1,e2)")}
    try:
        driver.get(server.links["ana"])
        done = {}
        for _ in range(3):
            wait_for(driver, lambda d: d.find_elements("css selector", "#row-text .pair.e1"))
            index = row_index(driver)
            pair = [(e.text, e.get_attribute("data-type")) for e in driver.find_elements("css selector", "#row-text .pair")]
            want_pair = {0: ["Smoke", "cancer"], 1: [hostile, "<b>box</b>"], 2: ["letter", "Rome"]}[index]
            assert [t for t, _ in pair] == want_pair, pair
            assert [k for _, k in pair][:2] == ["e1", "e2"]
            assert driver.execute_script("return window.__xss === undefined")
            assert not driver.find_elements("css selector", "#row img, #row b")
            if not done:
                # "1" alone waits for a second digit (there are 11 labels); "1","0" picks the tenth label
                ActionChains(driver).send_keys("1", "0").perform()
                wait_for(driver, lambda d: "picked" in d.find_elements("css selector", "#labels button")[9].get_attribute("class"))
                assert d_label(driver) == "10 Message-Topic(e2,e1)"
            typed, label = keys[index]
            ActionChains(driver).send_keys(*typed).perform()
            wait_for(driver, lambda d, label=label: d_label(d).endswith(" " + label))
            ActionChains(driver).send_keys(Keys.ENTER).perform()
            wait_for(driver, lambda d, i=index: f"saved row {i}" in status_text(d))
            done[index] = label
        from labelmill.store import Store
        from labelmill.strategies.review.log import ReviewLog

        with Store(tmp_path / "project.db") as store:
            assert ReviewLog(store, store.runs()[-1]["id"]).final()[0] == done
        assert len(done) == 3
    finally:
        driver.quit()
        server.stop()


def d_label(driver) -> str:
    return [b.text for b in driver.find_elements("css selector", "#labels button") if "picked" in b.get_attribute("class")][0]


RELATIONS_CONFIG = """\
task: relations
name: news-relations
labels: [Peop, Org, Loc]
relation:
  threshold: 0.6
  types:
    - {name: Work_For, description: "{head} is employed by {tail}", head: [Peop], tail: [Org]}
    - {name: OrgBased_In, description: "{head} is headquartered in {tail}", head: [Org], tail: [Loc]}
    - {name: Live_In, description: "{head} resides in {tail}", head: [Peop], tail: [Loc]}
    - {name: Located_In, head: [Loc], tail: [Loc]}
examples: {k: 0}
model:
  backend: fake
  name: keywords
  method: generate
  params:
    replies: [["Smith", "John Smith (Peop)\\nAcme Corp (Org)\\nParis (Loc)"]]
    default_reply: none
    keywords: {"yes": [employed, headquartered], "no": [resides]}
"""


def test_relations_view_edits_entities_and_relations_by_click_selection_and_keyboard(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    text = "John Smith works for Acme Corp , based in Paris , near Lyon ."
    server = serve(tmp_path, RELATIONS_CONFIG, [{"text": text}])
    driver = chrome()

    def relations(d):
        return [li.text for li in d.find_elements("css selector", "#relations li")]

    def click_entity(name):
        [span] = [e for e in driver.find_elements("css selector", "#row-text .span") if e.text.startswith(name)]
        span.click()

    try:
        driver.get(server.links["ana"])
        # the model's two relations are listed; Live_In was asked and not stated
        wait_for(driver, lambda d: len(relations(d)) == 2)
        assert sorted(relations(driver)) == ["Acme Corp \u2014OrgBased_In\u2192 Paris", "John Smith \u2014Work_For\u2192 Acme Corp"]
        # remove one by clicking it
        [li] = [e for e in driver.find_elements("css selector", "#relations li") if "OrgBased_In" in e.text]
        li.click()
        wait_for(driver, lambda d: relations(d) == ["John Smith \u2014Work_For\u2192 Acme Corp"])
        # add an entity the model missed: select its text, type 3 (Loc)
        assert driver.execute_script(SELECT_TEXT, "Lyon")
        ActionChains(driver).send_keys("3").perform()
        wait_for(driver, lambda d: [e.get_attribute("data-type") for e in d.find_elements("css selector", "#row-text .span")] == ["Peop", "Org", "Loc", "Loc"])
        # a relation: click the head, then the tail, then type the relation's number
        click_entity("John")
        click_entity("Paris")
        wait_for(driver, lambda d: d.find_elements("css selector", "#row-text .span.head") and d.find_elements("css selector", "#row-text .span.tail"))
        ActionChains(driver).send_keys("3").perform()  # Live_In
        wait_for(driver, lambda d: "John Smith \u2014Live_In\u2192 Paris" in relations(d))
        click_entity("Paris")
        click_entity("Lyon")
        ActionChains(driver).send_keys("4").perform()  # Located_In
        wait_for(driver, lambda d: len(relations(d)) == 3)
        # X removes a clicked entity with its relations; the row keeps the rest
        click_entity("Acme")
        ActionChains(driver).send_keys("x").perform()
        wait_for(driver, lambda d: len(d.find_elements("css selector", "#row-text .span")) == 3 and len(relations(d)) == 2)
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        wait_for(driver, lambda d: "saved row 0" in status_text(d))
        from labelmill.store import Store
        from labelmill.strategies.review.log import ReviewLog

        with Store(tmp_path / "project.db") as store:
            saved = ReviewLog(store, store.runs()[-1]["id"]).final()[0][0]
        ents = [(e["text"], e["type"]) for e in saved["entities"]]
        assert ents == [("John Smith", "Peop"), ("Paris", "Loc"), ("Lyon", "Loc")]
        assert all(text[e["start"]:e["end"]] == e["text"] for e in saved["entities"])
        got = sorted((ents[r["head"]][0], r["type"], ents[r["tail"]][0]) for r in saved["relations"])
        assert got == [("John Smith", "Live_In", "Paris"), ("Paris", "Located_In", "Lyon")]
    finally:
        driver.quit()
        server.stop()


def test_guideline_page_shows_refine_proposals_with_evidence_for_people_to_accept_edit_or_reject(tmp_path):
    """`refine --review` leaves its proposals pending; the app's guideline page shows each with its evidence
    (a hostile string as text); a person edits one and rejects the others; the rerun of refine scores the
    edited rule and commits it with the person as author."""
    import yaml
    from selenium.webdriver.common.by import By

    from conftest import child_env, cli_command
    from labelmill.store import Store
    from labelmill.strategies.refine.run import Edit
    from labelmill.strategies.refine.proposals import Proposals
    from test_guidelines import movie_config, movie_rows

    config = yaml.safe_dump(movie_config([[r"These texts are (\w+), but[\s\S]*?(dreadful)", "Rule: '{1}' means {0}."]]))
    (tmp_path / "config.yaml").write_text(config)
    with (tmp_path / "rows.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(movie_rows())
    project = str(tmp_path / "project.db")
    refine = cli_command("refine", str(tmp_path / "config.yaml"), str(tmp_path / "rows.csv"), "--rounds", "1", "--review", "--project", project)
    done = subprocess.run(refine, env=child_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wait for a person in the review app" in done.stdout
    with Store(project) as store:
        Proposals(store, "movies").record(None, Edit("add_rule", '<img src=x onerror="window.__xss = 3"> is negative', None, "1 error <script>x</script>", "someone"))
    server = serve(tmp_path, config, movie_rows())
    driver = chrome()
    try:
        driver.get(server.links["ana"])
        driver.get(server.base + "/guideline")
        wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".proposal")) == 4)  # a rule, two definitions (one narrower), the hostile one
        assert "4 of 4 proposed edits wait for a decision" in driver.find_element(By.ID, "proposals").text
        cards = driver.find_elements(By.CSS_SELECTOR, ".proposal")
        rule = next(c for c in cards if "add rule" in c.text and "dreadful" in c.text)
        assert "Evidence: " in rule.text and "search errors (negative labeled positive)" in rule.text
        assert "Classify the sentiment." in driver.find_element(By.ID, "current").text
        hostile = next(c for c in cards if "onerror" in c.text)
        assert '<img src=x onerror="window.__xss = 3"> is negative' in hostile.text and "<script>x</script>" in hostile.text
        assert driver.execute_script("return window.__xss === undefined") and not driver.find_elements(By.CSS_SELECTOR, "#proposals img, #proposals script")
        key = rule.get_attribute("data-key")
        rule.find_element(By.CSS_SELECTOR, "button.edit").click()
        area = rule.find_element(By.TAG_NAME, "textarea")
        area.clear()
        area.send_keys("'dreadful' means negative, whatever else the review says.")
        rule.find_element(By.CSS_SELECTOR, "button.edit").click()
        wait_for(driver, lambda d: "edited by ana" in d.find_element(By.CSS_SELECTOR, f'.proposal[data-key="{key}"]').text)
        for other in [c.get_attribute("data-key") for c in driver.find_elements(By.CSS_SELECTOR, ".proposal") if c.get_attribute("data-key") != key]:
            driver.find_element(By.CSS_SELECTOR, f'.proposal[data-key="{other}"] button.reject').click()
            wait_for(driver, lambda d, k=other: "rejected by ana" in d.find_element(By.CSS_SELECTOR, f'.proposal[data-key="{k}"]').text)
        assert "0 of 4 proposed edits wait" in driver.find_element(By.ID, "proposals").text
        token = server.token("ana")
        bad = server.request("/api/proposal", token=token, method="POST", body={"key": key, "action": "approve"}, csrf=server.csrf(token))
        assert bad[0] == 400 and b"unknown action" in bad[1]
        assert server.request("/api/proposal", token=token, method="POST", body={"key": key, "action": "accept"})[0] == 403  # no CSRF token
    finally:
        driver.quit()
        server.stop()
    again = subprocess.run(refine, env=child_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "accepted" in again.stdout
    show = subprocess.run(cli_command("guidelines", "show", str(tmp_path / "config.yaml"), "--project", project), env=child_env(),
                          capture_output=True, text=True)
    assert "1. 'dreadful' means negative, whatever else the review says." in show.stdout and "Author: ana." in show.stdout
    assert "onerror" not in show.stdout


ZERO_CONFIG = """\
task: classification
name: zero-labels
labels: [positive, negative]
guidelines: Classify the sentiment of the movie review.
input_template: "{text}"
gold_column: label
model:
  backend: fake
  params:
    keywords: {positive: [good, great], negative: [bad, awful]}
    follow_demos: true
    rule_words: true
    replies: [['These texts are (\\w+), but[\\s\\S]*?a (\\w+) film', "Rule: '{1}' means {0}."]]
    default_reply: the wording shows it.
"""


def test_a_project_with_no_examples_reviewed_by_keyboard_shows_a_narrowing_interval_and_relabels(tmp_path):
    """No examples file, no seed: 40 rows reviewed by keyboard. The page's estimate comes with a 95%
    interval once 10 audit rows are in, the interval narrows as reviews come in, the
    background relabel step (the nearest reviewed rows as demos) runs, the strategy search on the 40
    reviews turns it on (the fake follows its demos) and the page says so, and the guideline page proposes an
    edit from the model's errors on the reviewed rows."""
    import random
    import sqlite3

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    rng = random.Random(0)
    words = {"good": "positive", "great": "positive", "fine": "positive", "bad": "negative", "awful": "negative", "meh": "negative"}
    rows = []
    for i in range(150):
        w = rng.choice(sorted(words))
        label = "negative" if w in ("good", "great") and rng.random() < 0.3 else words[w]  # some confident answers are wrong
        rows.append({"text": f"review {i}: a {w} film", "label": label})
    gold = {r["text"]: r["label"] for r in rows}
    (tmp_path / "config.yaml").write_text(ZERO_CONFIG)
    with (tmp_path / "rows.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    # 20 audit rows (the loop's default count), drawn from the session's seeded random order (`--audit-uniform 1`):
    # the default's draws towards likely errors follow the confidences of the refits, whose timing the server
    # sets, and on some draws the search's 20 rows leave the demos level with zero-shot (the step off, said so)
    server = Server(tmp_path, "--audit", "20", "--audit-uniform", "1", "--batch", "5", "--relabel-every", "20", "--relabel-rows", "40",
                    "--tune-after", "40")
    driver = chrome()
    widths = {}
    try:
        driver.get(server.links["ana"])
        wait_for(driver, lambda d: d.find_elements("id", "row-text"))
        # read through wait_for: the page re-renders the estimate while it loads (a stale element is looked up again)
        wait_for(driver, lambda d: "an interval after 10 random audit rows" in d.find_element("id", "estimate").text, timeout=10)
        for n in range(1, 41):
            index, text = wait_for(driver, lambda d: (row_index(d), d.find_element("id", "row-text").text))
            key = "1" if gold[text] == "positive" else "2"
            ActionChains(driver).send_keys(key, Keys.ENTER).perform()
            wait_for(driver, lambda d, i=index: f"saved row {i}" in status_text(d))
            if n in (20, 40):
                found = wait_for(driver, lambda d: re.search(r"95% interval ([\d.]+)% \u2013 ([\d.]+)%", d.find_element("id", "estimate").text), timeout=30)
                widths[n] = float(found.group(2)) - float(found.group(1))
            if n == 20:  # the search's turn is said before it comes
                wait_for(driver, lambda d: re.search(r"after 40 reviewed rows \((19|20) so far\), a search of the relabel step's demos",
                                                     " ".join(e.text for e in d.find_elements("id", "relabel-search"))))
        assert widths[40] < widths[20]
        # the page asks again while a model job runs: the relabel step from the 20th review, then the search
        wait_for(driver, lambda d: any("relabel step:" in e.text for e in d.find_elements("id", "relabel-search")), timeout=120)
        wait_for(driver, lambda d: re.search(r"relabel step: [48]-shot (similar|balanced) demos beat zero-shot on 20 reviewed rows \([\d.]+% against [\d.]+%\)",
                                             d.find_element("id", "relabel-search").text), timeout=10)
        driver.get(server.base + "/guideline")
        wait_for(driver, lambda d: "No proposed edits yet" in d.find_element(By.ID, "proposals").text)

        def proposed(d) -> bool:  # the background relabel may hold the model: then the page says so and one clicks again
            if d.find_elements(By.CSS_SELECTOR, ".proposal.pending"):
                return True
            if not d.find_element(By.ID, "propose-state").text.startswith("proposing"):
                d.find_element(By.ID, "propose").click()
            return False

        wait_for(driver, proposed, timeout=120)
        card = driver.find_element(By.CSS_SELECTOR, ".proposal.pending")
        assert re.search(r"'\w+' means (positive|negative)\.", card.find_element(By.CSS_SELECTOR, ".edit-text").text)
        assert "dev rows" in card.find_element(By.CSS_SELECTOR, ".evidence").text
        wait_for(driver, lambda d: d.find_element(By.ID, "propose-state").text == "")  # the round ended: the page stops polling
    finally:
        driver.quit()
        server.stop()
    with sqlite3.connect(tmp_path / "project.db") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] >= 2  # the relabel step's run
        assert db.execute("SELECT COUNT(*) FROM reviews WHERE audit = 1").fetchone()[0] == 20


def test_the_conflicts_page_has_headers_and_a_keep_needs_a_second_click(workdir):
    server = Server(workdir, "--overlap", "2", annotators=("ana", "bob"))
    try:
        for name, label in (("ana", "positive"), ("bob", "negative")):
            token = server.token(name)
            assert server.request("/api/review", token=token, method="POST", body={"row": 3, "label": label}, csrf=server.csrf(token))[0] == 200
        driver = chrome()
        try:
            driver.get(server.links["ana"])
            driver.get(server.base + "/conflicts")
            wait_for(driver, lambda d: d.find_elements("css selector", "#conflicts th"))
            assert [th.text for th in driver.find_elements("css selector", "#conflicts th")][:3] == ["row", "text", "ratings"]
            keep = driver.find_element("css selector", "#conflicts button.keep")
            keep.click()
            assert keep.text.startswith("confirm: keep") and server.status(server.token("ana"))["conflicts"] == 1  # one click resolves nothing
            keep.click()
            wait_for(driver, lambda d: "No conflicts." in d.find_element("id", "conflicts").text)
            assert server.status(server.token("ana"))["conflicts"] == 0
            # the resolution is listed with who made it, and can be taken back: the row is a conflict again
            row = driver.find_element("css selector", "#resolved tr:nth-child(2)")
            assert [td.text for td in row.find_elements("css selector", "td")][3:5] == ["positive", "ana"]
            row.find_element("css selector", "button.unresolve").click()
            wait_for(driver, lambda d: d.find_elements("css selector", "#conflicts button.keep") and not d.find_elements("id", "resolved"))
            assert server.status(server.token("ana"))["conflicts"] == 1
        finally:
            driver.quit()
    finally:
        server.stop()


def test_blind_mode_shows_no_model_label_reason_or_other_answer_anywhere_the_page_reaches(workdir):
    """--blind: bob's answers and the model's label, confidence and confidence-based reasons appear nowhere
    in ana's page or in any response her page can fetch; the gold column never leaves the server; the
    team pages (conflicts, exports) are for the reviewers named at start."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    server = Server(workdir, "--blind", "--overlap", "2", "--reviewer", "carol", annotators=("ana", "bob"))
    try:
        bob = server.token("bob")
        for row in range(len(ROWS)):
            server.request("/api/review", token=bob, method="POST", body={"row": row, "label": "negative"}, csrf=server.csrf(bob))
        driver = chrome()
        try:
            driver.get(server.links["ana"])
            wait_for(driver, lambda d: d.find_elements("id", "row-text"))
            for _ in range(3):
                shown = driver.find_element("id", "row").text + driver.find_element("id", "nearest").text  # the row and what is beside it
                assert "model:" not in shown and "confidence" not in shown and "LLM says" not in shown and "likely label issue" not in shown
                assert not driver.find_elements("css selector", "#labels button.picked")  # nothing preselected: neither the model's label nor bob's
                assert driver.find_element("id", "nearest").text == ""  # the nearest reviewed rows would carry bob's answers
                assert not driver.find_elements("id", "export-jsonl") and "conflicts" not in driver.find_element("tag name", "nav").text
                index = row_index(driver)
                ActionChains(driver).send_keys("1", Keys.ENTER).perform()
                wait_for(driver, lambda d, i=index: f"saved row {i}" in status_text(d))
            fetched = driver.execute_script("""
                const get = async (u) => { const r = await fetch(u, {credentials: "same-origin"}); return [r.status, await r.text()]; };
                return Promise.all(["/api/next", "/api/status", "/api/row/3", "/api/conflicts", "/api/export?format=jsonl", "/api/proposals"].map(get));""")
        finally:
            driver.quit()
        answers = dict(zip(["next", "status", "row", "conflicts", "export", "proposals"], fetched))
        assert answers["conflicts"][0] == 403 and answers["export"][0] == 403
        for name in ("next", "row"):
            code, body = answers[name]
            row = json.loads(body)["row"]
            assert code == 200 and row["model_label"] is None and row["confidence"] is None and row["reviews"] == {}
            assert row["nearest"] == [] and row["cluster"] == [] and "label" not in row["fields"]
            assert not any(r.startswith(("confidence", "LLM says", "likely label issue")) for r in row["reasons"])
            assert "negative" not in json.dumps(row["fields"]) and "bob" not in body
        carol = server.token("carol")
        assert server.request("/api/conflicts", token=carol)[0] == 200 and server.request("/api/export?format=jsonl", token=carol)[0] == 200
    finally:
        server.stop()


ROLES_CONFIG = """\
task: roles
name: roles-review
roles: {check: false}
examples: {k: 0}
model:
  backend: fake
  params: {replies: [["Predicate: get$", "ARG0: I"]], default_reply: "none"}
"""


def test_roles_view_marks_the_predicate_and_edits_arguments_by_selection_and_keyboard(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    hostile = '<img src=x onerror="window.__xss = 4">'
    sentence = f"where can I get morcillas in tampa bay {hostile}"
    rows = [{"text": sentence, "predicate": json.dumps({"start": 12, "end": 15, "text": "get", "lemma": "get", "sense": "get.01"}),
             "arguments": json.dumps([{"start": 10, "end": 11, "role": "ARG0", "text": "I"}])}]
    server = serve(tmp_path, ROLES_CONFIG, rows)
    driver = chrome()

    def spans(d):
        return [(e.text, e.get_attribute("data-type")) for e in d.find_elements("css selector", "#row-text .span")]

    try:
        driver.get(server.links["ana"])
        # the predicate is marked V, the model's argument carries its role; the gold arguments are nowhere on the page
        wait_for(driver, lambda d: spans(d) == [("I", "ARG0"), ("get", "V")])
        assert "pred" in driver.find_elements("css selector", "#row-text .span")[1].get_attribute("class")
        assert driver.execute_script("return window.__xss === undefined") and not driver.find_elements("css selector", "#row img")
        assert "get.01" not in driver.page_source
        # the predicate cannot be an argument
        assert driver.execute_script(SELECT_TEXT, "get")
        ActionChains(driver).send_keys("2").perform()
        wait_for(driver, lambda d: "the predicate itself is not an argument" in status_text(d))
        # add ARG1 (the second role; with 20 roles "2" waits a moment for a second digit)
        assert driver.execute_script(SELECT_TEXT, "morcillas")
        ActionChains(driver).send_keys("2").perform()
        wait_for(driver, lambda d: ("morcillas", "ARG1") in spans(d))
        # ARGM-LOC is the seventh role
        assert driver.execute_script(SELECT_TEXT, "in tampa bay")
        ActionChains(driver).send_keys("7").perform()
        wait_for(driver, lambda d: ("in tampa bay", "ARGM-LOC") in spans(d))
        # click the model's ARG0 away
        driver.find_elements("css selector", "#row-text .span")[0].click()
        wait_for(driver, lambda d: spans(d) == [("get", "V"), ("morcillas", "ARG1"), ("in tampa bay", "ARGM-LOC")])
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        wait_for(driver, lambda d: "saved row 0" in status_text(d))
        from labelmill.store import Store
        from labelmill.strategies.review.log import ReviewLog

        with Store(tmp_path / "project.db") as store:
            saved = ReviewLog(store, store.runs()[-1]["id"]).final()[0][0]
        assert saved["predicate"] == {"start": 12, "end": 15, "text": "get", "lemma": "get"}
        assert [(a["role"], a["start"], a["end"], a["text"]) for a in saved["arguments"]] == [("ARG1", 16, 25, "morcillas"), ("ARGM-LOC", 26, 38, "in tampa bay")]
        # the API refuses an argument over the predicate or outside the sentence
        token = server.token("ana")
        csrf = server.csrf(token)
        for bad in ({"arguments": [{"start": 12, "end": 15, "role": "ARG1"}]}, {"arguments": [{"start": 0, "end": 999, "role": "ARG1"}]},
                    {"arguments": [{"start": 0, "end": 5, "role": "AGENT"}]}, ["ARG0"]):
            code, body = server.request("/api/review", token=token, method="POST", body={"row": 0, "label": bad}, csrf=csrf)
            assert code == 400, (bad, body)
    finally:
        driver.quit()
        server.stop()


TEMPORAL_CONFIG = """\
task: temporal
name: order-review
gold_column: relation
examples: {k: 0}
model:
  backend: fake
  params: {keywords: {BEFORE: [then], AFTER: [after]}}
"""


def test_temporal_view_highlights_the_event_pair_and_takes_four_keys(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    rows = [{"text": "She ate and then she left.", "e1": json.dumps({"start": 4, "end": 7}), "e2": json.dumps({"start": 21, "end": 25}), "relation": "BEFORE"},
            {"text": "He <b>left</b> after she ate.", "e1": "ate", "e2": "<b>left</b>", "relation": "AFTER"}]
    server = serve(tmp_path, TEMPORAL_CONFIG, rows)
    driver = chrome()
    try:
        driver.get(server.links["ana"])
        done = {}
        for _ in range(2):
            wait_for(driver, lambda d: d.find_elements("css selector", "#row-text .pair.e1"))
            index = row_index(driver)
            pair = [(e.text, e.get_attribute("data-type")) for e in driver.find_elements("css selector", "#row-text .pair")]
            assert pair == {0: [("ate", "e1"), ("left", "e2")], 1: [("<b>left</b>", "e2"), ("ate", "e1")]}[index], pair
            assert not driver.find_elements("css selector", "#row b")
            assert [b.text for b in driver.find_elements("css selector", "#labels button")] == ["1 BEFORE", "2 AFTER", "3 EQUAL", "4 VAGUE"]
            key, label = {0: ("3", "EQUAL"), 1: ("4", "VAGUE")}[index]
            ActionChains(driver).send_keys(key).perform()
            wait_for(driver, lambda d, label=label: d_label(d).endswith(" " + label))
            ActionChains(driver).send_keys(Keys.ENTER).perform()
            wait_for(driver, lambda d, i=index: f"saved row {i}" in status_text(d))
            done[index] = label
        from labelmill.store import Store
        from labelmill.strategies.review.log import ReviewLog

        with Store(tmp_path / "project.db") as store:
            assert ReviewLog(store, store.runs()[-1]["id"]).final()[0] == done
    finally:
        driver.quit()
        server.stop()
