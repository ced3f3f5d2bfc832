import pandas as pd
import pytest

from labelmill.config import DatasetSpec
from labelmill.errors import InputDataError
from labelmill.io import content_hash, free_column_name, read_rows, write_rows


def test_csv_delimiter_is_sniffed(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("text;label\nhello, world;positive\nbye;negative\n")
    frame = read_rows(path)
    assert list(frame.columns) == ["text", "label"] and frame.text[0] == "hello, world"


def test_tsv_and_utf8_bom(tmp_path):
    path = tmp_path / "rows.tsv"
    path.write_bytes("\ufefftext\tlabel\nça va\tpositive\n".encode("utf-8"))
    assert read_rows(path).to_dict("records") == [{"text": "ça va", "label": "positive"}]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet", ".xlsx", ".json"])
def test_round_trip_every_format(tmp_path, suffix):
    frame = pd.DataFrame({"text": ["a", "b, c"], "label": ["x", "y"]})
    path = write_rows(frame, tmp_path / f"out{suffix}")
    back = read_rows(path)
    assert back.astype(str).to_dict("records") == frame.to_dict("records")


def test_non_utf8_names_the_fix(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\xe9,positive\n".encode("latin-1"))
    with pytest.raises(InputDataError) as err:
        read_rows(path)
    assert "not UTF-8" in err.value.message and "line 2" in err.value.message and "encoding" in err.value.fix
    assert read_rows(path, DatasetSpec(encoding="latin-1")).text[0] == "café"


@pytest.mark.parametrize("content", ["", "   \n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(InputDataError, match="empty"):
        read_rows(path)


def test_header_only_file_has_no_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("text,label\n")
    with pytest.raises(InputDataError, match="no rows"):
        read_rows(path)


def test_broken_csv_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text('text,label\n"unclosed quote,positive\nok,negative\n')
    with pytest.raises(InputDataError):
        read_rows(path)


def test_list_of_dicts_dataframe_and_hf_dataset():
    rows = [{"text": "a", "label": "x"}]
    assert read_rows(rows).to_dict("records") == rows
    assert read_rows(pd.DataFrame(rows)).to_dict("records") == rows
    datasets = pytest.importorskip("datasets")
    assert read_rows(datasets.Dataset.from_list(rows)).to_dict("records") == rows


def test_free_column_name_and_content_hash():
    assert free_column_name("llm_label", ["text"]) == "llm_label"
    assert free_column_name("llm_label", ["llm_label", "llm_label_2"]) == "llm_label_3"
    a = pd.DataFrame({"text": ["a", "b"]})
    assert content_hash(a) == content_hash(a.copy()) != content_hash(pd.DataFrame({"text": ["a", "c"]}))
