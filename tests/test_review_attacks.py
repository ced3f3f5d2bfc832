"""The review app under hostile input (issue 36): each attack as a request to the real app (FastAPI's test
client on `create_app`), the store checked after it, and a property test posting random JSON everywhere."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelmill.strategies.review.run import ReviewSession
from test_review import CONFIG, _client, _csrf, session, write_rows  # noqa: F401  (session: the same fixture)


def test_hostile_requests_get_short_4xx_answers_and_change_nothing(session):
    """Issue 36's requests: each answered 4xx with a short message, nothing stored."""
    from labelmill.errors import InputDataError

    client, token = _client(session)
    client.get("/login", params={"token": token})
    csrf = {"X-CSRF-Token": _csrf(client.get("/").text)}
    rows = len(session.records)
    before = len(session.log.all())
    for body in ({"row": "21", "label": "positive"}, {"row": 22.9, "label": "positive"}, {"row": True, "label": "positive"},
                 {"row": -1, "label": "positive"}, {"row": 1_000_000, "label": "positive"}, {"label": "positive"}, {"row": [1], "label": "positive"}):
        answer = client.post("/api/review", json=body, headers=csrf)
        assert answer.status_code == 400, body
    for raw in (b'{"row": 1e400, "label": "positive"}', b'{"row": Infinity, "label": "positive"}', b"[" * 100_000 + b"]" * 100_000,
                b'{"rows": [Infinity]}', b"not json", b"x" * 1_200_000):
        for path in ("/api/review", "/api/resolve", "/api/bulk_accept"):
            answer = client.post(path, content=raw, headers={**csrf, "Content-Type": "application/json"})
            assert answer.status_code == 400 and len(answer.content) < 500, (path, raw[:20])
    padded = client.post("/api/review", json={"row": 5, "label": "positive", "pad": "x" * 1_100_000}, headers=csrf)
    assert padded.status_code == 400 and "over 1,000,000 bytes" in padded.json()["error"]  # a well-formed body over the cap
    huge = client.post("/api/review", json={"row": 5, "label": "x" * 500_000}, headers=csrf)
    assert huge.status_code == 400 and len(huge.content) < 1000  # the message does not echo the 500 kB label
    assert client.post("/api/resolve", json={"row": -1, "label": "positive"}, headers=csrf).status_code == 400
    assert client.post("/api/bulk_accept", json={"rows": "12"}, headers=csrf).status_code == 400
    assert client.post("/api/bulk_accept", json={"rows": [6] * 100_000}, headers=csrf).status_code == 400  # over a page of rows
    assert client.post("/api/proposal", json={"key": "k" * 10_000, "action": "accept"}, headers=csrf).status_code == 400
    assert client.get("/api/export", params={"format": "conll"}).status_code == 400  # NER's format on a classification project
    assert len(session.log.all()) == before and all(0 <= r.row_index < rows for r in session.log.all())
    # the same decision twice (a double click, a retried request) is one decision; bulk rows count once
    first = client.post("/api/review", json={"row": 7, "label": "negative"}, headers=csrf).json()["saved"]
    again = client.post("/api/review", json={"row": 7, "label": "negative"}, headers=csrf).json()["saved"]
    assert first == again and len(session.log.all()) == before + 1
    bulk = client.post("/api/bulk_accept", json={"rows": [30] * 50 + [31]}, headers=csrf).json()
    assert bulk["accepted"] == 2 and len(session.log.all()) == before + 3
    assert client.post("/api/bulk_accept", json={"rows": [30, 31]}, headers=csrf).json()["accepted"] == 0
    for row in (True, "21", 22.9, -1, rows):  # the same rules for Python callers
        with pytest.raises(InputDataError):
            session.submit("ana", row, "positive")
    # a resolution needs a conflict: one annotator's rating is not one
    refused = client.post("/api/resolve", json={"row": 7, "label": "positive"}, headers=csrf)
    assert refused.status_code == 400 and "no conflict" in refused.json()["error"]


def test_annotator_names_are_an_allow_list():
    from labelmill.strategies.review.log import allowed_name

    for good in ("ana", "Zoë Ngô", "bob.smith-2", "li_lei", "李雷"):
        assert allowed_name(good), good
    for bad in ("javascript:alert(1)", "ana\u202egnp", "a\u200bb", "", "x" * 65, " ana", "<b>", "a/b", "a\nb"):
        assert not allowed_name(bad), bad


def test_the_gold_column_never_leaves_the_server_and_blind_mode_hides_the_model(tmp_path):
    data = write_rows(tmp_path / "rows.csv")
    s = ReviewSession.open(CONFIG, data, project=tmp_path / "p.db", student=False, blind=True, audit=0)
    client, token = _client(s)
    client.get("/login", params={"token": token})
    row = client.get("/api/next").json()["row"]
    assert "label" not in row["fields"] and "text" in row["fields"]
    assert row["model_label"] is None and row["confidence"] is None
    assert not any(r.startswith(("confidence", "LLM says", "likely label issue")) for r in row["reasons"])
    assert all(not any(w.startswith("confidence") for w in v) for v in (s.view(i).reasons for i in range(10)))
    s.close()


def test_blind_mode_shows_no_nearest_reviewed_rows_or_confident_cluster(tmp_path):
    """The nearest reviewed rows carry their reviewers' labels: in blind mode a row comes without them
    (embeddings set by hand: the same rows, with or without blind)."""
    import numpy as np

    data = write_rows(tmp_path / "rows.csv", n=20)
    rows = {}
    for blind in (False, True):
        s = ReviewSession.open(CONFIG, data, project=tmp_path / f"p{blind}.db", student=False, blind=blind, audit=0)
        s.embeddings = np.repeat(np.eye(1, 4), 20, axis=0)
        s.submit("bob", 2, "negative")
        rows[blind] = s.view(5, "ana")
        s.close()
    assert rows[False].nearest and rows[False].nearest[0]["label"] == "negative"
    assert rows[True].nearest == [] and rows[True].cluster == []


def test_the_csv_export_neutralises_spreadsheet_formulas(tmp_path):
    import pandas as pd

    from labelmill.strategies.review.exports import export

    rows = [{"text": t, "label": "positive"} for t in ("=HYPERLINK(\"http://x\",\"a good film\")", "+1 good", "-2 bad", "@SUM(A1) good", "\tgood", "a good film")]
    pd.DataFrame(rows).to_csv(tmp_path / "rows.csv", index=False)
    s = ReviewSession.open(CONFIG, tmp_path / "rows.csv", project=tmp_path / "p.db", student=False, audit=0)
    out = export(s, "csv", tmp_path / "out.csv")
    texts = pd.read_csv(out, keep_default_na=False)["text"].tolist()
    assert texts[:5] == ["'=HYPERLINK(\"http://x\",\"a good film\")", "'+1 good", "'-2 bad", "'@SUM(A1) good", "'\tgood"]
    assert texts[5] == "a good film"
    s.close()


def test_written_outputs_are_readable_by_colleagues_as_the_umask_allows(tmp_path):
    import os

    import pandas as pd

    from labelmill.io import write_rows as write

    old = os.umask(0o022)
    try:
        path = write(pd.DataFrame({"a": [1]}), tmp_path / "out.csv")
        assert path.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        assert write(pd.DataFrame({"a": [1]}), tmp_path / "private.csv").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


SCALAR = st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40)
SHAPED = (  # bodies shaped like the real ones, with wrong values where the right ones go
    st.fixed_dictionaries({"row": SCALAR | st.integers(-100, 100), "label": st.sampled_from(["positive", "negative"]) | SCALAR})
    | st.fixed_dictionaries({"rows": st.lists(st.integers(-(10**6), 10**6) | SCALAR, max_size=8)})
    | st.fixed_dictionaries({"key": SCALAR, "action": st.sampled_from(["accept", "reject", "edit"]) | SCALAR, "text": SCALAR})
)
JSON = SHAPED | st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.sampled_from(["row", "rows", "label", "key", "action", "text", "x"]) | st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)
WRITES = ["/api/review", "/api/resolve", "/api/unresolve", "/api/bulk_accept", "/api/proposal", "/api/propose", "/api/undo"]


@pytest.mark.parametrize("path", WRITES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=JSON, raw=st.booleans())
def test_random_json_to_every_endpoint_never_gets_a_5xx_and_a_refusal_changes_nothing(session, body, path, raw):
    client, token = _client(session)
    client.get("/login", params={"token": token})
    csrf = {"X-CSRF-Token": _csrf(client.get("/").text), "Content-Type": "application/json"}
    before = [(r.id, r.row_index, json.dumps(r.label)) for r in session.log.all()]
    content = json.dumps(body, allow_nan=True).encode() if not raw else (json.dumps(body, allow_nan=True)[:-1] or "{").encode()  # raw: cut short
    answer = client.post(path, content=content, headers=csrf)
    assert answer.status_code < 500, (path, content[:200], answer.text[:200])
    assert len(answer.content) < 2000
    if answer.status_code >= 400:
        assert [(r.id, r.row_index, json.dumps(r.label)) for r in session.log.all()] == before
    assert all(0 <= r.row_index < len(session.records) for r in session.log.all())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.text(min_size=1, max_size=30) | st.integers(min_value=-(10**30), max_value=10**30).map(str), fmt=st.text(max_size=20))
def test_random_reads_never_get_a_5xx(session, index, fmt):
    from urllib.parse import quote

    client, token = _client(session)
    client.get("/login", params={"token": token})
    assert client.get("/api/row/" + quote(index, safe="")).status_code < 500
    assert client.get("/api/export", params={"format": fmt}).status_code < 500


def test_only_a_declared_reviewer_resolves_and_the_export_names_them(tmp_path):
    """Issue 36 item 3: an annotator who never saw a row cannot overrule it; a reviewer resolves a real
    conflict, and the export says who."""
    from fastapi.testclient import TestClient

    from labelmill.strategies.review.app import create_app
    from labelmill.strategies.review.exports import export

    data = write_rows(tmp_path / "rows.csv", n=10)
    s = ReviewSession.open(CONFIG, data, project=tmp_path / "p.db", student=False, overlap=2, audit=0)
    s.reviewers = {"carol"}
    tokens = {name: s.log.add_annotator(name) for name in ("ana", "bob", "carol")}
    s.submit("ana", 5, "positive")
    s.submit("bob", 5, "negative")
    s.submit("ana", 6, "positive")
    s.submit("bob", 6, "positive")
    app = create_app(s)
    clients = {}
    for name, token in tokens.items():
        clients[name] = TestClient(app)
        clients[name].get("/login", params={"token": token})
    csrf = {name: {"X-CSRF-Token": _csrf(c.get("/").text)} for name, c in clients.items()}
    before = len(s.log.all())
    assert clients["ana"].post("/api/resolve", json={"row": 5, "label": "positive"}, headers=csrf["ana"]).status_code == 403
    assert clients["carol"].post("/api/resolve", json={"row": 6, "label": "negative"}, headers=csrf["carol"]).status_code == 400  # they agreed
    assert len(s.log.all()) == before
    assert clients["carol"].post("/api/resolve", json={"row": 5, "label": "negative"}, headers=csrf["carol"]).status_code == 200
    assert s.reviewed()[5] == "negative" and s.reviewed()[6] == "positive"
    import pandas as pd

    frame = pd.read_csv(export(s, "csv", tmp_path / "out.csv"), keep_default_na=False)
    assert frame["reviewed_by"][5] == "ana,bob; resolved by carol" and frame["reviewed_by"][6] == "ana,bob"
    # the resolution can be taken back, by a reviewer only: the row is a conflict again, the log keeps both
    listed = clients["carol"].get("/api/conflicts").json()
    assert listed["conflicts"] == [] and [(r["row"], r["label"], r["by"]) for r in listed["resolved"]] == [(5, "negative", "carol")]
    before = len(s.log.all())
    assert clients["ana"].post("/api/unresolve", json={"row": 5}, headers=csrf["ana"]).status_code == 403
    assert clients["carol"].post("/api/unresolve", json={"row": 6}, headers=csrf["carol"]).status_code == 400  # nothing to undo
    assert clients["carol"].post("/api/unresolve", json={"row": "5"}, headers=csrf["carol"]).status_code == 400
    assert len(s.log.all()) == before
    assert clients["carol"].post("/api/unresolve", json={"row": 5}, headers=csrf["carol"]).json() == {"undone": 5}
    assert 5 not in s.reviewed() and s.status()["conflicts"] == 1
    listed = clients["carol"].get("/api/conflicts").json()
    assert [c["row"] for c in listed["conflicts"]] == [5] and listed["resolved"] == []
    undo = s.log.all()[-1]
    assert (undo.action, undo.kind, undo.annotator, undo.row_index) == ("undo", "resolve", "carol", 5) and len(s.log.all()) == before + 1
    frame = pd.read_csv(export(s, "csv", tmp_path / "again.csv"), keep_default_na=False)
    assert frame["reviewed_by"][5] == "ana,bob"
    assert clients["carol"].post("/api/unresolve", json={"row": 5}, headers=csrf["carol"]).status_code == 400  # once
    s.close()
