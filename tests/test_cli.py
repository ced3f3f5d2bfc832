"""The CLI as a user runs it (a subprocess): bad input gives one line naming the fix and a non-zero exit."""

import json
import signal
import sqlite3
import subprocess
import time

import pandas as pd
import pytest
import yaml

from conftest import ROWS, child_env, cli_command, fake_config


def run_cli(*args, cwd=None, timeout=120):
    return subprocess.run(cli_command(*args), capture_output=True, text=True, env=child_env(), cwd=cwd, timeout=timeout)


@pytest.fixture
def files(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(fake_config()))
    data = tmp_path / "rows.csv"
    pd.DataFrame(ROWS).to_csv(data, index=False)
    return tmp_path, config, data


def assert_one_line_error(proc, code, *needles):
    assert proc.returncode == code, proc.stderr
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Fix:" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_run_then_eval(files):
    tmp, config, data = files
    proc = run_cli("run", str(config), str(data), "--out", str(tmp / "out.csv"), "--project", str(tmp / "p.db"), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["labeled"] == len(ROWS) and summary["model_rows"] == len(ROWS)
    proc = run_cli("eval", str(config), str(tmp / "out.csv"), "--json", "--target", "0.9")
    metrics = json.loads(proc.stdout)
    for key in ("accuracy", "macro_f1", "completion_rate", "ece", "n_rows", "threshold_for_target"):
        assert key in metrics
    assert metrics["n_rows"] == len(ROWS) and metrics["completion_rate"] == 1.0
    report = tmp / "out.report.html"
    assert report.exists() and report.read_text().count("data:image/png;base64") >= 2


def test_init_writes_a_config_that_loads(tmp_path):
    proc = run_cli("init", "classification", "-o", str(tmp_path / "c.yaml"))
    assert proc.returncode == 0, proc.stderr
    from labelmill.config import load_config

    assert load_config(tmp_path / "c.yaml").task == "classification"
    assert_one_line_error(run_cli("init", "classification", "-o", str(tmp_path / "c.yaml")), 1, "already exists")


def test_missing_column(files):
    tmp, config, data = files
    config.write_text(yaml.safe_dump(fake_config(input_template="{review}")))
    assert_one_line_error(run_cli("run", str(config), str(data), "--out", str(tmp / "o.csv")), 3, "'review'", "text, label")


def test_empty_file(files):
    tmp, config, _ = files
    (tmp / "empty.csv").write_text("")
    assert_one_line_error(run_cli("run", str(config), str(tmp / "empty.csv"), "--out", str(tmp / "o.csv")), 3, "empty")


def test_non_utf8_file(files):
    tmp, config, _ = files
    (tmp / "latin.csv").write_bytes("text,label\ncaf\xe9 cr\xe8me,positive\n".encode("latin-1"))
    assert_one_line_error(run_cli("run", str(config), str(tmp / "latin.csv"), "--out", str(tmp / "o.csv")), 3, "not UTF-8")
    ok = run_cli("run", str(config), str(tmp / "latin.csv"), "--out", str(tmp / "o.csv"), "--encoding", "latin-1", "--project", str(tmp / "p.db"))
    assert ok.returncode == 0, ok.stderr


def test_unknown_config_key(files):
    tmp, config, data = files
    bad = fake_config()
    bad["gold_colum"] = bad.pop("gold_column")
    config.write_text(yaml.safe_dump(bad))
    assert_one_line_error(run_cli("plan", str(config), str(data)), 2, "gold_colum", "gold_column")


def test_few_shot_label_not_in_label_set(files):
    tmp, config, data = files
    config.write_text(yaml.safe_dump(fake_config(examples={"k": 2, "items": [{"text": "fine", "label": "positive"}, {"text": "meh", "label": "negatve"}]})))
    assert_one_line_error(run_cli("run", str(config), str(data), "--out", str(tmp / "o.csv")), 2, "'negatve'", "negative")


def test_model_file_not_there(files):
    tmp, config, data = files
    config.write_text(yaml.safe_dump(fake_config(model={"backend": "llama_cpp", "name": str(tmp / "nope.gguf"), "params": {}})))
    assert_one_line_error(run_cli("run", str(config), str(data), "--out", str(tmp / "o.csv")), 4, "nope.gguf")


def test_unknown_backend_lists_the_known_ones(files):
    tmp, config, data = files
    config.write_text(yaml.safe_dump(fake_config(model={"backend": "lama_cpp"})))
    assert_one_line_error(run_cli("plan", str(config), str(data)), 2, "lama_cpp", "llama_cpp")


def test_debug_shows_the_traceback(files):
    tmp, config, _ = files
    proc = run_cli("--debug", "run", str(config), str(tmp / "missing.csv"), "--out", str(tmp / "o.csv"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_kill_9_mid_run_loses_nothing_duplicates_nothing_resends_nothing(tmp_path):
    n = 60
    rows = [{"text": f"row {i} " + ("good" if i % 2 else "bad"), "label": "positive" if i % 2 else "negative"} for i in range(n)]
    data = tmp_path / "rows.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    log = tmp_path / "calls.log"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(fake_config(model={"batch_size": 4, "params": {"delay_s": 0.15, "call_log": str(log), "keywords": {"positive": ["good"], "negative": ["bad"]}}})))
    db = tmp_path / "p.db"
    args = ("run", str(config), str(data), "--out", str(tmp_path / "out.csv"), "--project", str(db), "--quiet")
    proc = subprocess.Popen(cli_command(*args), env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.05)
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    if con.execute("SELECT COUNT(*) FROM annotations").fetchone()[0] >= 12:
                        break
            except sqlite3.Error:
                pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as con:
        saved = {r[0] for r in con.execute("SELECT row_index FROM annotations")}
        saved_prompts = {r[0] for r in con.execute("SELECT prompt_hash FROM annotations")}
    assert 12 <= len(saved) < n, "the kill must land mid-run"
    sent_before = log.read_text().split()
    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    sent_after = log.read_text().split()[len(sent_before):]
    with sqlite3.connect(db) as con:
        indices = [r[0] for r in con.execute("SELECT row_index FROM annotations")]
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert sorted(indices) == list(range(n))  # none lost, none duplicated
    assert len(out) == n and out.text.tolist() == [r["text"] for r in rows] and (out.llm_label != "").all()
    assert len(sent_after) == n - len(saved)  # the rerun sent exactly the rows that were not saved
    assert set(sent_after).isdisjoint(saved_prompts)  # no saved row went to the model again


def test_every_option_of_every_command_has_help_and_the_cli_has_a_version():
    """Issue 39: help on every option (no literal %% in it), and `labelmill --version`."""
    import click
    from click.testing import CliRunner

    from labelmill import __version__
    from labelmill.cli import cli
    from labelmill.cli.app import _add_strategy_commands

    _add_strategy_commands()  # (what `main` does before it parses: the strategies' own commands)
    ctx = click.Context(cli)

    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                yield from walk(cmd.get_command(ctx, name), [*path, name])
        else:
            yield " ".join(path), cmd

    commands = list(walk(cli, []))
    assert len(commands) >= 20
    bare = [(name, p.opts[0]) for name, cmd in commands for p in cmd.params if isinstance(p, click.Option) and not (p.help or "").strip()]
    doubled = [(name, p.opts[0]) for name, cmd in commands for p in cmd.params if isinstance(p, click.Option) and "%%" in (p.help or "")]
    assert bare == [] and doubled == []
    # one meaning per option name: every command that has it takes the same kind of value (a location is a
    # location whether click checks it as a file, a path or text; a range is its number kind)
    kind = {"file": "location", "path": "location", "directory": "location", "integer range": "integer", "float range": "float"}
    meanings: dict[str, set] = {}
    for name, cmd in commands:
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden:
                for opt in p.opts:
                    value = "location" if opt in ("--out", "-o") else kind.get(p.type.name, p.type.name)
                    meanings.setdefault(opt, set()).add((value, p.is_flag))
    assert {opt: sorted(m) for opt, m in meanings.items() if len(m) > 1} == {}
    done = CliRunner().invoke(cli, ["--version"])
    assert done.exit_code == 0 and done.output.strip() == f"labelmill {__version__}"


def test_a_newcomer_s_python_session_and_init_list_what_exists(tmp_path):
    """Issue 39: dir(labelmill) lists the API; init offers every registered task type; rows with empty text
    are labeled with a notice naming them."""
    import labelmill
    from click.testing import CliRunner

    from labelmill.cli import cli
    from labelmill.events import Notice
    from labelmill.registry import tasks

    assert {"label", "plan", "evaluate", "calibrate", "init_config", "Config"} <= set(dir(labelmill))
    usage = CliRunner().invoke(cli, ["init", "--help"], terminal_width=400).output
    assert all(name in usage for name in tasks.names())
    heard = []
    rows = [{"text": "a good film"}, {"text": "   "}, {"text": None}, {"text": "bad"}]
    labelmill.label(fake_config(gold_column=None), rows, project=tmp_path / "p.db", on_event=heard.append)
    notes = [e.message for e in heard if isinstance(e, Notice) and "empty text" in e.message]
    assert notes == ["2 rows have empty text (rows 1, 2, from 0): they are labeled anyway; check the input column"]


def test_a_wrong_model_or_backend_name_suggests_the_right_one():
    """Issue 39: did-you-mean for catalog names and backends; an API model's name says which backend."""
    import labelmill
    from labelmill.errors import ModelNotFoundError, UnknownComponentError
    from labelmill.models import resolve_model

    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("qwen2.5-coder-05b")
    assert "did you mean 'qwen2.5-coder-0.5b'" in err.value.one_line() and "all-mpnet" not in err.value.one_line()  # an encoder is no labeler
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("gpt-4o-mini")
    assert "set model.backend: openai" in err.value.one_line()
    with pytest.raises(UnknownComponentError) as err:
        labelmill.plan({"task": "classification", "labels": ["a", "b"], "model": {"backend": "opneai", "name": "gpt-4o-mini"}}, [{"text": "x"}])
    assert "did you mean 'openai'" in err.value.one_line()


def test_the_fix_for_an_unknown_model_names_its_backend_or_the_nearest_labeler_in_full():
    """The whole sentence, for an API model of each vendor (any case), a misspelled alias, and a name near nothing."""
    from labelmill.models import _model_fix

    local = "qwen2.5-coder-0.5b, smollm2-135m, qwen2.5-coder-1.5b"  # the catalog's labelers; its encoder is none
    assert _model_fix("Claude-3-haiku") == f"Claude-3-haiku is an API model: set model.backend: anthropic (and its API key), or use a local model: {local}"
    assert _model_fix("gpt-4o") == f"gpt-4o is an API model: set model.backend: openai (and its API key), or use a local model: {local}"
    assert _model_fix("qwen-05b") == f"did you mean 'qwen2.5-coder-0.5b'? give the path of a .gguf file, or a catalog model: {local}"  # an alias, named by its model
    assert _model_fix("smolm2") == f"did you mean 'smollm2-135m'? give the path of a .gguf file, or a catalog model: {local}"
    assert _model_fix("mpnet-base") == f"give the path of a .gguf file, or a catalog model: {local}"  # near an encoder's alias only: no hint


def test_plan_eval_and_calibrate_take_encoding_as_run_does(tmp_path):
    """Issue 39: the error for a non-UTF-8 file suggests --encoding; plan and eval (and calibrate) accept it."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(fake_config()))
    data = tmp_path / "rows.csv"
    data.write_bytes("text,label\ncaf\xe9 good film,positive\nna\xefve bad plot,negative\n".encode("latin-1"))
    bad = subprocess.run(cli_command("plan", str(config), str(data)), capture_output=True, text=True, env=child_env(), timeout=120)
    assert bad.returncode != 0 and "--encoding" in bad.stderr
    for command in (["plan", str(config), str(data), "--json"], ["run", str(config), str(data), "--out", str(tmp_path / "out.csv"), "--project", str(tmp_path / "p.db")]):
        done = subprocess.run(cli_command(*command, "--encoding", "latin-1"), capture_output=True, text=True, env=child_env(), timeout=120)
        assert done.returncode == 0, done.stderr
    (tmp_path / "out.csv").write_bytes((tmp_path / "out.csv").read_text(encoding="utf-8").encode("latin-1"))
    done = subprocess.run(cli_command("eval", str(config), str(tmp_path / "out.csv"), "--json", "--encoding", "latin-1"), capture_output=True, text=True, env=child_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accuracy"] == 1.0
    helped = subprocess.run(cli_command("calibrate", "--help"), capture_output=True, text=True, env=child_env(), timeout=120)
    assert "--encoding" in helped.stdout


def test_plan_s_time_includes_loading_the_model():
    """Issue 39: plan's estimate counts the model's load, as a run pays it (a fake that takes 1 s to load)."""
    import labelmill

    quick = labelmill.plan(fake_config(), ROWS)
    slow = labelmill.plan(fake_config(model={"params": {"load_s": 1.0, "keywords": {"positive": ["good"], "negative": ["bad"]}}}), ROWS)
    assert slow["setup_seconds"] >= 1.0 > quick["setup_seconds"]
    assert slow["estimated_seconds"] >= quick["estimated_seconds"] + 0.9


def test_label_shows_progress_by_default_in_a_notebook(monkeypatch, tmp_path, capsys):
    """Issue 39: in a Jupyter kernel `labelmill.label()` with no handler draws a progress bar (here a
    recording bar factory stands in for tqdm's widget); outside one it stays silent."""
    import labelmill
    from labelmill import events

    bars = []

    class Bar:
        def __init__(self, total, initial=0, desc=""):
            self.total, self.n, self.closed = total, initial, False
            bars.append(self)

        def update(self, count):
            self.n += count

        def close(self):
            self.closed = True

    labelmill.label(fake_config(), ROWS, project=tmp_path / "quiet.db")
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(events, "in_notebook", lambda: True)
    monkeypatch.setattr(events.NotebookProgress, "bar_factory", Bar)
    labelmill.label(fake_config(), ROWS, project=tmp_path / "p.db")
    assert len(bars) == 1 and bars[0].n == bars[0].total == len(ROWS) and bars[0].closed
    assert f"done: {len(ROWS)}/{len(ROWS)} rows labeled" in capsys.readouterr().out


def test_a_time_limit_reads_the_same_in_every_command_and_budget_keeps_one_meaning(tmp_path):
    """--max-time takes seconds or a unit in tune and refine; --budget is the review's budget (rows, a share, a
    time), and the old --budget SECONDS of tune and refine is read as --max-time with a notice."""
    import click
    from click.testing import CliRunner

    from labelmill.cli import cli
    from labelmill.cli.app import _add_strategy_commands
    from labelmill.core.strategy import Duration

    _add_strategy_commands()
    assert [Duration().convert(v, None, None) for v in ("600", "90s", "10m", "2h", 30)] == [600.0, 90.0, 600.0, 7200.0, 30.0]
    for bad in ("soon", "0", "-5m"):
        with pytest.raises(click.BadParameter):
            Duration().convert(bad, None, None)
    config, dev = tmp_path / "c.yaml", tmp_path / "dev.csv"
    config.write_text("task: classification\nlabels: [a, b]\nmodel: {backend: fake}\n")
    dev.write_text("text,label\nx,a\n")
    runner = CliRunner()
    for command in ("tune", "refine"):
        result = runner.invoke(cli, [command, str(config), str(dev), "--max-time", "later"])
        assert result.exit_code == 2 and "is not a time" in result.output, result.output
        result = runner.invoke(cli, [command, str(config), str(dev), "--budget", "later"])
        assert result.exit_code == 2 and "is not a time" in result.output, result.output
        assert "--budget" not in runner.invoke(cli, [command, "--help"]).output
    assert "--budget" in runner.invoke(cli, ["review", "--help"]).output
    # the old name reaches the command as --max-time, given alone or with others, before or after them
    from labelmill.core.strategy import max_time_option

    @click.command()
    @click.option("--limit", type=int, default=1)
    @max_time_option(default=600)
    def probe(limit, max_time_s):
        click.echo(f"{limit} {max_time_s}")

    assert runner.invoke(probe, []).output.strip() == "1 600.0"
    assert runner.invoke(probe, ["--max-time", "10m"]).output.strip() == "1 600.0"
    assert runner.invoke(probe, ["--max-time", "90s", "--limit", "3"]).output.strip() == "3 90.0"
    old = runner.invoke(probe, ["--budget", "5"])
    assert old.output.splitlines()[-1] == "1 5.0" and "now --max-time" in old.output
    assert runner.invoke(probe, ["--limit", "2", "--budget", "2m"]).output.splitlines()[-1] == "2 120.0"
