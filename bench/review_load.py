"""The review app under a full team: a large project, many annotators at once, a kill -9 mid-load.

A project of `--rows` rows (the fake keyword model labels them: the app's cost, not a model's) with a
log of `--log` reviews already in it (two decisions on each of the first rows, the second replacing the
first), served by `labelmill review` on 127.0.0.1. Then `--annotators` simulated people, each on a
thread of this process with its own token, in bounded loops:

  paced     `--seconds`: each fetches a row, submits it and polls the status, once a second
            next_p95_ms, submit_p95_ms, status_p95_ms, errors (non-2xx or failed requests)
  capacity  `--capacity-seconds`: the same loops with no pause: reviews_per_s
  kill      the same loops, the server killed with SIGKILL after `--kill-after` seconds, then started again:
            lost (acknowledged reviews missing from the store after the restart)

and over everything: lost (acknowledged reviews not in the store), duplicates (a row decided by two
annotators though each row needs one, or one annotator's same decision stored twice), the server's
start time on the large project. The clients share the server's 2 cores (one process, threads), so the
latencies include the clients' own time.

    python bench/review_load.py [--rows 100000] [--log 100000] [--annotators 20] [--seconds 60]
                                [--capacity-seconds 20] [--kill-after 5] [--json]
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import emit  # noqa: E402

CONFIG = """\
task: classification
name: load
labels: [positive, negative]
guidelines: Classify the sentiment of the movie review.
input_template: "{text}"
examples: {k: 0}
model:
  backend: fake
  params: {keywords: {positive: [good, great], negative: [bad, awful]}}
"""
WORDS = ["good", "great", "fine", "bad", "awful", "meh"]


def make_project(work: Path, rows: int, log: int) -> float:
    """The rows, labeled, and `log` reviews in the store; returns the seconds it took."""
    import pandas as pd

    from labelmill.strategies.review.run import ReviewSession

    started = time.perf_counter()
    rng = random.Random(0)
    (work / "config.yaml").write_text(CONFIG)
    pd.DataFrame({"text": [f"row {i}: a {rng.choice(WORDS)} film" for i in range(rows)]}).to_csv(work / "rows.csv", index=False)
    session = ReviewSession.open(work / "config.yaml", work / "rows.csv", project=work / "project.db", student=False, audit=0)
    half = max(1, log // 2)
    items = [(i % half, session.row_hashes[i % half], "earlier", "positive" if i < half else "negative", None, None, None) for i in range(log)]
    session.log.add_many(items, kind="simulated")
    session.close()
    return time.perf_counter() - started


class Server:
    def __init__(self, work: Path, annotators: list[str]):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        tokens = work / f"tokens-{self.port}.json"
        args = [sys.executable, "-m", "labelmill", "review", str(work / "config.yaml"), str(work / "rows.csv"), "--project", str(work / "project.db"),
                "--port", str(self.port), "--tokens", str(tokens), "--no-student", "--audit", "0", "--target", "1.0"]  # (never stops by itself)
        for name in annotators:
            args += ["--annotator", name]
        started = time.perf_counter()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("labelmill review exited")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        self.start_s = time.perf_counter() - started
        links = json.loads(tokens.read_text())
        self.tokens = {name: url.split("token=", 1)[1] for name, url in links.items()}

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


def call(base: str, path: str, token: str, csrf: str | None = None, body: dict | None = None) -> tuple[int, bytes, float]:
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data, headers["Content-Type"], headers["X-CSRF-Token"] = json.dumps(body).encode(), "application/json", csrf or ""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, data=data, headers=headers, method="POST" if body is not None else "GET"), timeout=30) as r:
            out = r.status, r.read()
    except urllib.error.HTTPError as exc:
        out = exc.code, exc.read()
    return out[0], out[1], time.perf_counter() - started


class Annotator(threading.Thread):
    """One person: next row, submit, status once a second (`paced`), until `until`."""

    def __init__(self, server: Server, name: str, until: float, paced: bool):
        super().__init__(daemon=True)
        self.base, self.token, self.until, self.paced = server.base, server.tokens[name], until, paced
        page = call(self.base, "/", self.token)[1].decode()
        self.csrf = json.loads(html.unescape(re.search(r'data-config="([^"]+)"', page).group(1)))["csrf"]
        self.times: dict[str, list[float]] = {"next": [], "submit": [], "status": []}
        self.acked: list[int] = []
        self.errors = 0

    def run(self) -> None:
        last_status = 0.0
        while time.time() < self.until:
            cycle = time.perf_counter()
            try:
                code, body, took = call(self.base, "/api/next", self.token)
                self.times["next"].append(took)
                row = json.loads(body).get("row") if code == 200 else None
                if code != 200:
                    self.errors += 1
                if row is None:
                    time.sleep(0.2)
                    continue
                label = row.get("current") or "positive"
                code, body, took = call(self.base, "/api/review", self.token, self.csrf, {"row": row["index"], "label": label})
                self.times["submit"].append(took)
                if code == 200:
                    self.acked.append(int(json.loads(body)["saved"]))
                else:
                    self.errors += 1
                if time.time() - last_status >= 1.0:
                    code, _, took = call(self.base, "/api/status", self.token)
                    self.times["status"].append(took)
                    self.errors += code != 200
                    last_status = time.time()
            except (OSError, ValueError, http.client.HTTPException):  # (the kill phase cuts responses short)
                self.errors += 1
                if time.time() >= self.until:
                    break
                time.sleep(0.05)
            if self.paced:
                time.sleep(max(0.0, 1.0 - (time.perf_counter() - cycle)))


def load(server: Server, names: list[str], seconds: float, paced: bool) -> list[Annotator]:
    until = time.time() + seconds
    people = [Annotator(server, name, until, paced) for name in names]
    for p in people:
        p.start()
    return people


def stored(work: Path) -> dict[int, tuple[int, str, str]]:
    with sqlite3.connect(work / "project.db") as db:
        return {i: (row, who, kind) for i, row, who, kind in db.execute("SELECT id, row_index, annotator, kind FROM reviews WHERE action != 'undo'")}


def p95(values: list[float]) -> float | None:
    return round(float(np.quantile(values, 0.95)) * 1000, 1) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--log", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--capacity-seconds", type=float, default=20)
    parser.add_argument("--kill-after", type=float, default=5)
    parser.add_argument("--workdir", help="Keep the project here (default: a temporary folder).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = [f"person{i}" for i in range(args.annotators)]
    figures: dict = {"rows": args.rows, "log": args.log, "annotators": args.annotators}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        figures["setup_s"] = round(make_project(work, args.rows, args.log), 1)
        server = Server(work, names)
        figures["server_start_s"] = round(server.start_s, 1)
        acked: list[int] = []
        errors = 0
        try:
            people = load(server, names, args.seconds, paced=True)
            for p in people:
                p.join()
            for key in ("next", "submit", "status"):
                figures[f"{key}_p95_ms"] = p95([t for p in people for t in p.times[key]])
                figures[f"{key}_median_ms"] = round(float(np.median([t for p in people for t in p.times[key]])) * 1000, 1)
            figures["paced_reviews"] = sum(len(p.acked) for p in people)
            errors += sum(p.errors for p in people)
            acked += [i for p in people for i in p.acked]
            people = load(server, names, args.capacity_seconds, paced=False)
            for p in people:
                p.join()
            figures["reviews_per_s"] = round(sum(len(p.acked) for p in people) / args.capacity_seconds, 1)
            errors += sum(p.errors for p in people)
            acked += [i for p in people for i in p.acked]
            figures["errors"] = errors
            # kill -9 mid-load, then a restart: every acknowledged review is in the store
            people = load(server, names, args.kill_after + 3, paced=False)
            time.sleep(args.kill_after)
            server.stop(signal.SIGKILL)
            for p in people:
                p.join()
            kill_acked = [i for p in people for i in p.acked]
            figures["kill_phase_failed_requests"] = sum(p.errors for p in people)  # the requests in flight at the kill and after it
            server = Server(work, names)
            figures["restart_s"] = round(server.start_s, 1)
            code = call(server.base, "/api/status", server.tokens[names[0]])[0]
            figures["status_after_restart"] = code
        finally:
            server.stop()
        found = stored(work)
        figures["lost"] = sum(1 for i in acked if i not in found)
        figures["lost_after_kill"] = sum(1 for i in kill_acked if i not in found)
        figures["acknowledged"] = len(acked) + len(kill_acked)
        mine = [(row, who) for i, (row, who, kind) in found.items() if kind == "person"]
        by_row: dict[int, set] = {}
        for row, who in mine:
            by_row.setdefault(row, set()).add(who)
        figures["duplicates"] = (len(mine) - len(set(mine))) + sum(len(w) - 1 for w in by_row.values())
    emit(figures, args.json)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
