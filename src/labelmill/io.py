"""Reading input rows and writing labeled output: CSV, TSV, JSONL, Parquet, XLSX, DataFrames, HF Datasets."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelmill.errors import InputDataError

if TYPE_CHECKING:
    import pandas as pd

    from labelmill.types import DatasetSpec

TEXT_FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
BINARY_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx"}


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    fmt = TEXT_FORMATS.get(suffix) or BINARY_FORMATS.get(suffix)
    if fmt is None:
        raise InputDataError(
            f"{path}: unknown file type '{suffix or '(none)'}'",
            fix="use .csv, .tsv, .jsonl, .json, .parquet or .xlsx",
        )
    return fmt


def read_rows(source: Any, spec: DatasetSpec | None = None) -> pd.DataFrame:
    """Any supported input as a DataFrame with a fresh 0..n-1 index."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    elif isinstance(source, (str, os.PathLike)):
        frame = _read_file(Path(source), spec)
    elif hasattr(source, "to_pandas") and hasattr(source, "column_names"):  # datasets.Dataset
        frame = source.to_pandas()
    elif isinstance(source, Iterable):
        rows = list(source)
        if rows and not all(isinstance(r, dict) for r in rows):
            raise InputDataError("rows must be dicts (column -> value)", fix="pass a list of dicts, a DataFrame or a file path")
        frame = pd.DataFrame(rows)
    else:
        raise InputDataError(f"cannot read rows from {type(source).__name__}", fix="pass a file path, a DataFrame, a list of dicts or a datasets.Dataset")
    if len(frame) == 0:
        raise InputDataError("the input has no rows", fix="give a file with a header row and at least one data row")
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True)


def _read_file(path: Path, spec: DatasetSpec | None) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        raise InputDataError(f"input file {path} does not exist", fix="check the path")
    fmt = file_format(path)
    if path.stat().st_size == 0:
        raise InputDataError(f"input file {path} is empty", fix="give a file with a header row and at least one data row")
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt == "xlsx":
            sheet = spec.sheet if spec and spec.sheet is not None else 0
            return pd.read_excel(path, sheet_name=sheet, dtype=str, keep_default_na=False)
        text = _decode(path, spec.encoding if spec else None)
        if not text.strip():
            raise InputDataError(f"input file {path} is empty", fix="give a file with a header row and at least one data row")
        if fmt == "jsonl":
            return pd.read_json(io.StringIO(text), lines=True, dtype=False)
        if fmt == "json":
            return pd.read_json(io.StringIO(text), dtype=False)
        delimiter = (spec.delimiter if spec else None) or _sniff_delimiter(text, path)
        return pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, engine="python" if len(delimiter) > 1 else "c")
    except InputDataError:
        raise
    except (ValueError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputDataError(f"cannot parse {path} as {fmt}: {first}", fix="repair the file (quotes, delimiters) or set dataset.delimiter in the config") from None
    except Exception as exc:  # pyarrow / openpyxl raise their own types for a broken file
        raise InputDataError(f"cannot read {path} as {fmt}: {exc}", fix=f"check that the file really is {fmt}") from None


def _decode(path: Path, encoding: str | None) -> str:
    data = path.read_bytes()
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise InputDataError(f"{path} cannot be decoded as {encoding}: {exc}", fix="set dataset.encoding to the file's real encoding") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputDataError(
            f"{path} is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line})",
            fix="convert it to UTF-8, or set dataset.encoding (e.g. latin-1, cp1252) in the config, or pass --encoding (run, plan, eval, calibrate)",
        ) from None


def _sniff_delimiter(text: str, path: Path) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def content_hash(frame: pd.DataFrame) -> str:
    """Stable hash of a frame's columns and values (identifies an input for resuming)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(frame.columns).encode())
    for row in frame.astype(str).itertuples(index=False, name=None):
        digest.update("\x1e".join(map(str, row)).encode())  # pandas 3 keeps a missing value a float NaN
    return digest.hexdigest()[:16]


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (setting it races other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_rows(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half an output file."""
    path = Path(path)
    fmt = file_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("csv", "xlsx"):  # lists and objects (spans, extracted fields) as JSON, not Python reprs
        frame = frame.copy()
        for column in frame.columns:
            if frame[column].dtype == object and frame[column].map(lambda v: isinstance(v, (list, dict))).any():
                frame[column] = frame[column].map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes it 0600: the output is for colleagues too, as any file the user writes
    try:
        if fmt == "csv":
            frame.to_csv(tmp, index=False, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        elif fmt == "jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        elif fmt == "json":
            frame.to_json(tmp, orient="records", force_ascii=False, indent=1)
        elif fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        elif fmt == "xlsx":
            frame.to_excel(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def free_column_name(wanted: str, taken: Iterable[str]) -> str:
    """`wanted`, or `wanted_2`, `wanted_3`... so that added columns never overwrite input columns."""
    taken = set(taken)
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted}_{n}" in taken:
        n += 1
    return f"{wanted}_{n}"
