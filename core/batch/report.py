"""A batch's summary: one row per manifest line (line, name, status, seconds, outputs, error), as
CSV and JSON, written atomically beside the outputs."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

FIELDS = ("line", "name", "status", "seconds", "outputs", "error")
REPORT_NAME = "emoflame_batch_report"
DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass
class LineResult:
    """What became of one manifest line.

    Attributes:
        line: its line number in the manifest.
        name: the outputs' name stem.
        status: ``done`` (written now), ``skipped`` (complete from an earlier run, inputs
            unchanged) or ``failed``.
        seconds: wall time the line took (0 when skipped).
        outputs: the files it has, absolute paths.
        error: the one-line reason it failed, or "".
    """

    line: int
    name: str
    status: str
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    error: str = ""


def report_paths(folder: Path) -> tuple[Path, Path]:
    """Where a batch's report goes in ``folder``: (.csv, .json)."""
    return folder / f"{REPORT_NAME}.csv", folder / f"{REPORT_NAME}.json"


def is_report(path: Path) -> bool:
    """True if ``path`` is a report a batch wrote (so a new batch may replace it without --force)."""
    try:
        if path.suffix == ".json":
            return "emoflame_batch" in json.loads(path.read_text(encoding="utf-8"))
        with open(path, encoding="utf-8") as f:
            return f.readline().strip() == ",".join(FIELDS)
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        return False


def write_report(results: list[LineResult], folder: Path, summary: dict) -> tuple[Path, Path]:
    """Write the report (rows in manifest order) through one transaction; earlier reports of a
    batch are replaced, any other file of that name is refused.

    Args:
        summary: totals and settings for the JSON's ``emoflame_batch`` header.

    Raises:
        OutputError: a file of that name that no batch wrote, or the folder cannot be written.
    """
    from ..outputs import Transaction

    rows = sorted(results, key=lambda r: r.line)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**asdict(row), "seconds": f"{row.seconds:.2f}", "outputs": ";".join(row.outputs)})
    document = json.dumps({"emoflame_batch": summary, "lines": [asdict(r) for r in rows]}, indent=1)
    paths = report_paths(folder)
    ours = all(not p.exists() or is_report(p) for p in paths)
    with Transaction(force=ours) as outputs:
        outputs.check(paths)
        for path, text in zip(paths, (table.getvalue(), document + "\n")):
            outputs.stage(path).write_text(text, encoding="utf-8")
        return tuple(outputs.commit())
