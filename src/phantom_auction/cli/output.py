"""Files a command writes: per-auction rows and summaries (JSON, CSV, Parquet), the HTML
run report, and the JSON the ``--json`` flags print. Writes are atomic (a temporary file
moved into place), so an interrupted command never leaves half a file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import Enum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, cast

import typer

from .._extras import require
from .app import bad_value, err_console

if TYPE_CHECKING:
    import pandas as pd


def jsonable(value: Any) -> Any:
    """JSON-encodable form of numpy scalars/arrays, paths and dataclasses."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=jsonable, allow_nan=False)


def clean_floats(value: Any) -> Any:
    """Replace NaN/inf (no JSON form) by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_floats(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return clean_floats(value.item())
    return value


def convergence(results: Any, n: int = 20) -> tuple[Any, Any] | None:
    paths = getattr(results, "convergence_paths", None)
    if paths is None:
        return None
    return cast(tuple[Any, Any], paths(n=n))


def write_run_report(
    out_dir: Path, frame: pd.DataFrame, analysis: Mapping[str, Any], results: Any, **kw: Any
) -> Path:
    from ..report import write_report

    config = results.tasks[0].spec.config
    written = write_report(
        out_dir,
        frame,
        analysis,
        convergence=convergence(results),
        improvement_cap_bps=getattr(config, "max_improvement_bps", None),
        **kw,
    )
    return written.html


class OutputFormat(StrEnum):
    """File format of per-auction rows and the summary."""

    json = "json"
    csv = "csv"
    parquet = "parquet"


def _long_row(metric: str, statistic: str, value: Any) -> dict[str, Any]:
    """One summary row: a number in ``value`` (a bool as 0/1), anything else as text."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()  # a numpy scalar
    if isinstance(value, int | float):
        # An integer a float cannot hold exactly (a large seed) is kept as text too.
        exact = isinstance(value, bool) or not isinstance(value, int) or abs(value) <= 2**53
        text = None if exact else str(value)
        return {"metric": metric, "statistic": statistic, "value": float(value), "text": text}
    if value is None or isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple):
        text = json.dumps(clean_floats(value), default=jsonable, allow_nan=False)
    else:
        text = str(value)
    return {"metric": metric, "statistic": statistic, "value": math.nan, "text": text}


def summary_long(
    analysis: Mapping[str, Any], parameters: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The summary as ``(metric, statistic, value, text)`` rows, for CSV and Parquet.

    ``value`` holds every number (float; a bool as 0/1) and ``text`` every value that
    is not one (``ci_method``, a strategy name; a list as JSON), the other left empty.
    A statistic nested deeper takes a dotted name (``strategy_details`` ->
    ``aggressive.profit_bps``); a value that is not a table of statistics (``num_auctions``)
    has the statistic ``value``. ``parameters`` (the run's effective settings, the seed
    among them) come first, as rows of the metric ``parameters``.
    """
    rows: list[dict[str, Any]] = []

    def add(metric: str, prefix: str, stats: Any) -> None:
        if isinstance(stats, Mapping):
            for statistic, value in stats.items():
                add(metric, f"{prefix}{statistic}.", value)
        else:
            rows.append(_long_row(metric, prefix.removesuffix(".") or "value", stats))

    if parameters is not None:
        add("parameters", "", parameters)
    for metric, stats in analysis.items():
        add(str(metric), "", stats)
    return rows


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, moved onto it only once fully written.

    An interrupted write leaves the previous file (or none), never half a file.
    """
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_frame(frame: pd.DataFrame, path: Path, fmt: OutputFormat) -> None:
    with atomic(path) as partial:
        if fmt is OutputFormat.parquet:
            require("pyarrow", "reports")
            frame.to_parquet(partial, index=False)
        elif fmt is OutputFormat.csv:
            frame.to_csv(partial, index=False)
        else:
            _write_json_rows(frame, partial)


#: Rows a JSON file is written in at a time (bounded memory, whatever the run's size).
_JSON_ROWS_AT_ONCE = 10_000


def _json_values(column: pd.Series) -> list[bytes]:
    """A column's values as JSON text: floats as their shortest exact repr (pandas'
    to_json rounds to 10 decimals: the CLI audit found 5e-11 off the Parquet), NaN and
    infinities as null."""
    import numpy as np
    import orjson
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
        # One C pass over the column (numbers hold no comma to split on): 2.5x faster than
        # repr() of each value. float64 first: a float32's shortest repr is not its value's.
        values = column.to_numpy(dtype=np.float64 if dtype.kind == "f" else None)
        return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    if isinstance(dtype, pd.CategoricalDtype):  # each category written once; -1 is null
        names = [orjson.dumps(clean_floats(x), default=jsonable) for x in dtype.categories]
        return [(names[code] if code >= 0 else b"null") for code in column.cat.codes.tolist()]
    items = column.astype(object).where(column.notna(), None).tolist()  # pd.NA: null
    return [orjson.dumps(clean_floats(x), default=jsonable) for x in items]


def _write_json_rows(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as a JSON array of row objects, one a line, written a block at a time."""
    require("orjson", "reports")
    keys = [json.dumps(str(c)).encode() for c in frame.columns]
    # One row is the template filled in (bytes % tuple: one C call a row).
    row = b"{" + b",".join(key.replace(b"%", b"%%") + b":%s" for key in keys) + b"}"
    with path.open("wb") as file:
        file.write(b"[")
        for start in range(0, len(frame), _JSON_ROWS_AT_ONCE):
            block = frame.iloc[start : start + _JSON_ROWS_AT_ONCE]
            columns = [_json_values(block[c]) for c in frame.columns]
            rows = [row % values for values in zip(*columns, strict=True)]
            file.write((b"\n" if start == 0 else b",\n") + b",\n".join(rows))
        file.write(b"\n]\n")


def write_outputs(
    out: Path,
    frame: pd.DataFrame,
    analysis: Mapping[str, Any],
    fmt: OutputFormat,
    parameters: Mapping[str, Any] | None = None,
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    auctions = out / f"auctions.{fmt.value}"
    write_frame(frame, auctions, fmt)
    return [auctions, write_summary(out, analysis, fmt, parameters)]


class RowStream:
    """Per-auction rows written chunk by chunk as a run goes (Parquet or CSV), for runs
    too large to keep in memory; the file appears, complete, when :meth:`close` is called.
    """

    def __init__(self, path: Path, fmt: OutputFormat, labels: Sequence[str]) -> None:
        if fmt is OutputFormat.json:
            raise ValueError("rows stream to parquet or csv, not json")
        if fmt is OutputFormat.parquet:
            require("pyarrow", "reports")
        self.path, self.fmt, self.labels = path, fmt, tuple(labels)
        self.partial = path.with_name(f".{path.name}.partial")
        self.rows = 0
        self._writer: Any = None

    def __call__(self, columns: Mapping[str, Any]) -> None:
        from ..simulation.results import frame_from_columns

        frame = frame_from_columns(dict(columns), self.labels, copy=False)  # written, dropped
        if self.fmt is OutputFormat.parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.partial, table.schema)
            self._writer.write_table(table)
        else:
            frame.to_csv(self.partial, mode="a", header=self.rows == 0, index=False)
        self.rows += len(frame)

    def close(self, *, keep: bool) -> None:
        """Finish the file and move it into place (``keep``), or remove what was written."""
        if self._writer is not None:
            self._writer.close()
        if keep and self.partial.exists():
            os.replace(self.partial, self.path)
        self.partial.unlink(missing_ok=True)


def write_summary(
    out: Path,
    analysis: Mapping[str, Any],
    fmt: OutputFormat,
    parameters: Mapping[str, Any] | None = None,
) -> Path:
    """The ``analyze_results`` summary as ``summary.<fmt>`` in ``out``: JSON as
    ``--json`` prints it (``parameters`` first), CSV and Parquet as :func:`summary_long`."""
    summary = out / f"summary.{fmt.value}"
    if fmt is OutputFormat.json:
        nested = dict(analysis) if parameters is None else {"parameters": parameters, **analysis}
        with atomic(summary) as partial:
            partial.write_text(dumps(clean_floats(nested)) + "\n", encoding="utf-8")
    else:
        pd = pandas_module()
        long = pd.DataFrame(
            summary_long(analysis, parameters), columns=["metric", "statistic", "value", "text"]
        )
        long["value"] = long["value"].astype("float64")
        long["text"] = long["text"].astype("string")
        write_frame(long, summary, fmt)
    return summary


def _toml_plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers, mappings as dicts, sequences as
    lists and anything else TOML has no type for as its text."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()  # a numpy scalar
    if isinstance(value, Mapping):
        return {str(k): _toml_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_toml_plain(v) for v in value]
    return value if isinstance(value, bool | int | float | str) else str(value)


def scenario_toml(tables: Mapping[str, Mapping[str, Any]], header: str = "") -> str:
    """``tables`` (``[simulation]``, ``[market]``, ``[run]``) as a ``--config`` file;
    keys whose value is None (the default) are left out."""
    import tomli_w

    document = {
        name: {key: _toml_plain(value) for key, value in table.items() if value is not None}
        for name, table in tables.items()
    }
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + tomli_w.dumps({name: keys for name, keys in document.items() if keys})


def write_run_files(out: Path, record: Mapping[str, Any]) -> list[Path]:
    """``run.json`` (``record``: seed, scenario, parameters, the command that reruns the
    run) and ``scenario.toml`` (the scenario as a ``--config`` file) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    run_json, toml = out / "run.json", out / "scenario.toml"
    with atomic(run_json) as partial:
        partial.write_text(dumps(clean_floats(dict(record))) + "\n", encoding="utf-8")
    header = f"phantom-auction {record.get('command', '')}: rerun with\n{record.get('rerun', '')}"
    with atomic(toml) as partial:
        partial.write_text(scenario_toml(record["config"], header), encoding="utf-8")
    return [run_json, toml]


def pandas_module() -> Any:
    require("pandas", "reports")
    import pandas

    return pandas


#: What the commands write in an ``--out`` directory (and simulate's ``report/`` in it).
#: An earlier run there is replaced only with ``--overwrite``, its files removed first,
#: so that none is left beside the new run's (the CLI audit: a seed-1 auctions.parquet
#: stayed beside a seed-9 run.json, and an old sweep's plots beside a new grid).
RUN_FILES: Final = (
    "run.json",
    "scenario.toml",
    "auctions.*",
    "summary.*",
    "sweep.parquet",
    "sweep_*.png",
    "index.html",
    "report.html",
    "candidates.json",
    "calibration.toml",
    "comparison.json",
    "learning.json",
    "learning.png",
    "improvement_bps.png",
    "mev_capture_rate.png",
    "clearing_price.png",
    "convergence.png",
    "winners.png",
)
#: The files only a run writes: a directory holding none holds no earlier run (its
#: other files, an index.html of the user's, are never removed).
_RUN_MARKERS: Final = ("run.json", "learning.json", "candidates.json", "sweep.parquet")


OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace an earlier run in --out (its files are removed first). A command's "
        "own default directory (reports/...) is always replaced.",
    ),
]


@dataclasses.dataclass(frozen=True)
class EarlierRun:
    """An earlier run's files in an output directory, removed by :meth:`remove` once the
    new run's options have all been checked (a refused option leaves them as they were)."""

    option: str
    path: Path
    files: tuple[Path, ...]

    def remove(self) -> None:
        for file in self.files:
            file.unlink(missing_ok=True)
        if self.files:
            err_console().print(
                f"note: {self.option} {self.path}: the earlier run's {len(self.files)} files "
                "were removed",
                style="yellow",
            )


def prepare_out_dir(
    option: str, path: Path, *, overwrite: bool, default: Path | None = None
) -> EarlierRun:
    """:func:`check_writable_dir`, then refuse (exit 2) a directory that holds an earlier
    run (:data:`RUN_FILES`, where one of its markers is) unless ``overwrite`` or it is
    the command's own ``default`` directory: the earlier run, to remove once the new
    run's options are checked."""
    check_writable_dir(option, path)
    overwrite = overwrite or (default is not None and path == default)
    earlier: list[Path] = []
    for where in (path, path / "report"):
        if any((where / marker).is_file() for marker in _RUN_MARKERS):
            found = {p for pattern in RUN_FILES for p in where.glob(pattern) if p.is_file()}
            earlier += sorted(found)
    if earlier and not overwrite:
        names = ", ".join(str(p.relative_to(path)) for p in earlier[:3])
        more = f" and {len(earlier) - 3} more" if len(earlier) > 3 else ""
        bad_value(
            option,
            str(path),
            f"holds an earlier run ({names}{more}): pass --overwrite to replace it, or "
            "choose another directory",
        )
    return EarlierRun(option, path, tuple(earlier))


def check_writable_dir(option: str, path: Path) -> None:
    """Create the output directory now and make sure a file can be written in it, so a
    bad ``--out`` (an existing file, a path under a file, a read-only place) is refused
    in one line with exit code 2 before any work starts."""
    if path.exists() and not path.is_dir():
        bad_value(option, str(path), "exists and is not a directory")
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        bad_value(option, str(path), f"is under {str(existing)!r}, which is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        bad_value(option, str(path), f"cannot write there: {exc.strerror or exc}")
