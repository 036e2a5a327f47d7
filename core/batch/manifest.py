"""A batch manifest: CSV or JSON Lines, one take per line, columns ``audio, emotion, intensity,
transcript, name`` (only ``audio`` required; paths relative to the manifest's folder).

A problem with the whole file (unreadable, no ``audio`` column, an unknown column) is a
:class:`ManifestError`; a problem with one line (no audio, a missing file, an intensity out of
range, a name that cannot be a file name or is taken) is that line's own ``error``, reported
with its line number while the other lines run.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import EmoflameError
from ..validate import unit_interval

COLUMNS = ("audio", "emotion", "intensity", "transcript", "name")
MAX_LINES = 100_000
MAX_NAME_BYTES = 200  # room for the longest suffix and the temporary's mark within 255
MAX_FIELD = 100_000  # characters in one field (a transcript given inline)


class ManifestError(EmoflameError, ValueError):
    """A manifest that cannot be read at all; the message names the problem and the fix."""


@dataclass(frozen=True)
class ManifestLine:
    """One line of a manifest, read and checked.

    Attributes:
        number: its line number in the file (a CSV's header is line 1).
        audio: the recording, absolute; None when the line gives none.
        emotion: as given ("neutral" when empty); emotion tracks pass through as text.
        intensity: ``"audio"`` (when empty), a float in [0, 1], or a curve file's absolute path.
        transcript: None (empty), the words, or a text file's absolute path.
        name: the outputs' file name stem, unique in the manifest.
        error: why the line cannot run, or None.
    """

    number: int
    audio: Path | None
    emotion: str = "neutral"
    intensity: str | float = "audio"
    transcript: str | None = None
    name: str = ""
    error: str | None = None


def read_manifest(path: str | os.PathLike) -> list[ManifestLine]:
    """Read and check every line of a manifest (``.csv``, or ``.jsonl``/``.ndjson``/``.json`` JSON
    Lines; another suffix is sniffed: a first character ``{`` means JSON Lines).

    Returns:
        The lines in file order, each with its ``error`` or None.

    Raises:
        ManifestError: the file is missing, unreadable, empty, too long, not UTF-8, or its CSV
            header lacks ``audio`` or has a column emoflame does not read.
    """
    path = Path(os.path.expanduser(os.fspath(path))).absolute()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {path}; give the path of a .csv or .jsonl file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read the manifest {path} ({exc}); give a UTF-8 .csv or .jsonl file") from None
    json_lines = path.suffix.lower() in (".jsonl", ".ndjson", ".json") or (
        path.suffix.lower() != ".csv" and text.lstrip().startswith("{"))
    raw = _json_lines(text, path) if json_lines else _csv_rows(text, path)
    if not raw:
        raise ManifestError(f"the manifest {path} has no lines; give one line per recording with at least an audio column")
    if len(raw) > MAX_LINES:
        raise ManifestError(f"the manifest {path} has {len(raw)} lines; split it into manifests of at most {MAX_LINES}")
    lines = [_check(number, fields, problem, path.parent) for number, fields, problem in raw]
    return _named(lines)


def _csv_rows(text: str, path: Path) -> list[tuple[int, dict, str | None]]:
    reader = csv.reader(io.StringIO(text))
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise ManifestError(f"the manifest {path} is not valid CSV ({exc}); save it as comma-separated values") from None
    rows = [(n, row) for n, row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return []
    (_, header), body = rows[0], rows[1:]
    header = [h.strip().lower() for h in header]
    unknown = [h for h in header if h not in COLUMNS]
    if "audio" not in header or unknown:
        raise ManifestError(f"the manifest {path} has columns {', '.join(header)}; its header must name audio and may "
                            f"name {', '.join(COLUMNS[1:])}" + (f" (not {', '.join(unknown)})" if unknown else ""))
    out = []
    for number, row in body:
        problem = None if len(row) <= len(header) else f"it has {len(row)} fields for {len(header)} columns (quote a field that holds a comma)"
        out.append((number, dict(zip(header, row)), problem))
    return out


def _json_lines(text: str, path: Path) -> list[tuple[int, dict, str | None]]:
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            out.append((number, {}, f"it is not JSON ({exc.msg if hasattr(exc, 'msg') else exc})"))
            continue
        if not isinstance(fields, dict):
            out.append((number, {}, "it is not a JSON object such as {\"audio\": \"line.wav\"}"))
            continue
        unknown = [str(k) for k in fields if k not in COLUMNS]
        if unknown:
            out.append((number, {}, f"it has the keys {', '.join(unknown)}; emoflame reads {', '.join(COLUMNS)}"))
            continue
        out.append((number, fields, None))
    return out


def _check(number: int, fields: dict, problem: str | None, folder: Path) -> ManifestLine:
    def fail(reason: str) -> ManifestLine:
        audio = _text(fields.get("audio"))
        name = _text(fields.get("name")) or (Path(audio).stem if audio and len(audio) < 1024 else "")
        return ManifestLine(number, None, name=name, error=f"line {number}: {reason}")

    if problem:
        return fail(problem)
    values = {k: fields.get(k) for k in COLUMNS}
    for key, value in values.items():
        if value is not None and not isinstance(value, (str, int, float)) or isinstance(value, bool):
            return fail(f"its {key} is {type(value).__name__}; give text" + (" or a number" if key == "intensity" else ""))
        if isinstance(value, str) and len(value) > MAX_FIELD:
            return fail(f"its {key} is {len(value)} characters long; keep it under {MAX_FIELD}")
    audio_text = _text(values["audio"])
    if not audio_text:
        return fail("no audio; give the recording's path in the audio column")
    audio = _resolve(audio_text, folder)
    if not audio.is_file():
        return fail(f"audio file not found: {audio} (paths are relative to the manifest's folder)")
    intensity: str | float = "audio"
    given = values["intensity"]
    if isinstance(given, (int, float)) or _text(given):
        text = _text(given)
        try:
            number_value = float(given) if isinstance(given, (int, float)) else float(text)
        except ValueError:
            number_value = None
        if number_value is not None:
            try:
                intensity = unit_interval(number_value, "the intensity")
            except EmoflameError as exc:
                return fail(str(exc))
        elif text.lower() != "audio":
            curve = _resolve(text, folder)
            if not curve.is_file():
                return fail(f"intensity {text!r} is not 'audio', a number from 0 to 1, or an existing curve file")
            intensity = str(curve)
    transcript = _text(values["transcript"]) or None
    if transcript is not None and "\n" not in transcript and len(transcript) < 1024:
        candidate = _resolve(transcript, folder)
        if candidate.is_file():
            transcript = str(candidate)
    name = _text(values["name"])
    if name:
        reason = _bad_name(name)
        if reason:
            return fail(reason)
    return ManifestLine(number, audio, emotion=_text(values["emotion"]) or "neutral", intensity=intensity,
                        transcript=transcript, name=name)


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _resolve(text: str, folder: Path) -> Path:
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else (folder / path)


def _bad_name(name: str) -> str | None:
    if name in (".", "..") or name.startswith(".") or re.search(r"[/\\\x00]", name):
        return f"the name {name!r} cannot be a file name; use letters, digits, '-' and '_' (no '/', no leading '.')"
    if len(name.encode()) > MAX_NAME_BYTES:
        return f"the name {name[:40]!r}... is {len(name.encode())} bytes long; keep names under {MAX_NAME_BYTES}"
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.strip().lower()).strip("-")[:40] or "neutral"


def _named(lines: list[ManifestLine]) -> list[ManifestLine]:
    """Give every line a unique name: its own, else the audio's stem, else stem_emotion, else
    stem_emotion_line; an explicit name used twice is the later line's error."""
    from dataclasses import replace

    explicit = {}
    out = []
    for line in lines:
        if line.error is None and line.name:
            if line.name in explicit:
                line = replace(line, error=f"line {line.number}: the name {line.name!r} is also line "
                                           f"{explicit[line.name]}'s; give each line its own name")
            else:
                explicit[line.name] = line.number
        out.append(line)
    stems = {}
    for line in out:
        if line.error is None and not line.name:
            stems.setdefault(line.audio.stem, []).append(line)
    taken = set(explicit)
    named = {}
    for stem, group in stems.items():
        for line in group:
            base = stem if len(group) == 1 else f"{stem}_{_slug(line.emotion)}"
            name = base if base not in taken else f"{base}_line{line.number}"
            if sum(1 for other in group if f"{stem}_{_slug(other.emotion)}" == base) > 1 and len(group) > 1:
                name = f"{base}_line{line.number}"
            taken.add(name)
            named[line.number] = name[:MAX_NAME_BYTES]
    return [replace(line, name=named.get(line.number, line.name)) for line in out]
