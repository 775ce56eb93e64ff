"""Answer capture: the cells the grader inserts after graded test cells, and reading their files.

After each Dry Lab test cell the grader inserts one *capture cell*. It writes the named answer
variable (and, in the reference run of the instructor's notebook, the misconception variables
named by ``value_from``) to ``<workdir>/.drylab/answers/<key>.json`` (+ ``<key>.parquet`` for
DataFrames and Series), and nothing else. The values are compared later, outside the
resident's kernel. Pickle is never used: the grader must not unpickle bytes a resident made.

A capture file holds one JSON object::

    {"type": "json", "value": ...}      None, bool, int, float, str, and lists / dicts of them
    {"type": "set", "value": [...]}     set / frozenset (elements as above)
    {"type": "frame"} / {"type": "series", "name": ...}   data in <key>.parquet
    {"type": "missing"}                 the variable is not defined
    {"type": "unsupported", "unsupported": "<type name>"}
"""

from __future__ import annotations

import json
from pathlib import Path

ANSWERS_DIR = Path(".drylab") / "answers"
CAPTURE_TAG = "drylab-capture"
#: Largest JSON answer kept (bytes); larger ones are recorded as unsupported.
MAX_JSON_BYTES = 5_000_000

_CAPTURE_TEMPLATE = '''\
def __drylab_capture(targets):
    import json, math, os
    out = os.path.join(".drylab", "answers")
    os.makedirs(out, exist_ok=True)
    scope = globals()

    def plain(v):
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return float(v)
        mod = type(v).__module__ or ""
        if mod.startswith("numpy") and hasattr(v, "tolist"):
            return plain(v.tolist())
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict) and all(isinstance(k, str) for k in v):
            return {{k: plain(x) for k, x in v.items()}}
        raise TypeError(type(v).__name__)

    for key, name in targets.items():
        base = os.path.join(out, key)
        for ext in (".json", ".parquet"):
            if os.path.exists(base + ext):
                os.remove(base + ext)
        if name not in scope:
            rec = {{"type": "missing"}}
        else:
            v = scope[name]
            kind = type(v).__module__ + "." + type(v).__qualname__
            try:
                if kind in ("pandas.DataFrame", "pandas.core.frame.DataFrame"):
                    v.to_parquet(base + ".parquet")
                    rec = {{"type": "frame"}}
                elif kind in ("pandas.Series", "pandas.core.series.Series"):
                    v.to_frame(name="__value__").to_parquet(base + ".parquet")
                    rec = {{"type": "series", "name": None if v.name is None else str(v.name)}}
                elif isinstance(v, (set, frozenset)):
                    rec = {{"type": "set", "value": [plain(x) for x in v]}}
                else:
                    rec = {{"type": "json", "value": plain(v)}}
            except Exception:
                rec = {{"type": "unsupported", "unsupported": type(v).__name__}}
        text = json.dumps(rec)
        if len(text) > {max_bytes}:
            text = json.dumps({{"type": "unsupported", "unsupported": "too large"}})
        with open(base + ".json", "w", encoding="utf-8") as fh:
            fh.write(text)


__drylab_capture({targets!r})
del __drylab_capture
'''


def capture_source(targets: dict[str, str]) -> str:
    """The code of a capture cell writing ``{key: variable name}``."""
    return _CAPTURE_TEMPLATE.format(targets=dict(targets), max_bytes=MAX_JSON_BYTES)


def capture_cell(targets: dict[str, str]):
    """A code cell (tagged ``drylab-capture``) that captures the given variables."""
    from nbformat.v4 import new_code_cell

    cell = new_code_cell(source=capture_source(targets))
    cell.metadata["tags"] = [CAPTURE_TAG]
    return cell


def misconception_key(grade_id: str, mis_id: str) -> str:
    return f"{grade_id}.mis.{mis_id}"


class Missing:
    """A captured value that does not exist (variable undefined or capture never ran)."""

    def __init__(self, reason: str = "missing"):
        self.reason = reason

    def __repr__(self) -> str:
        return f"Missing({self.reason!r})"


class Unsupported(Missing):
    """A value of a type the grader does not compare."""


def read_answer(directory: str | Path, key: str):
    """The value captured under ``key``, or :class:`Missing` / :class:`Unsupported`."""
    base = Path(directory) / key
    json_path = base.with_name(base.name + ".json")
    if _is_link_out(json_path, directory) or _is_link_out(
            base.with_name(base.name + ".parquet"), directory):
        # A resident could point an answer file at the reference cache; never follow links.
        return Unsupported("a link, not a file")
    try:
        text = json_path.read_text(encoding="utf-8")
        rec = json.loads(text)
    except (OSError, ValueError):
        return Missing("not captured")
    if not isinstance(rec, dict):
        return Missing("not captured")
    kind = rec.get("type")
    if kind == "json":
        return rec.get("value")
    if kind == "set":
        return set(_hashable(x) for x in rec.get("value") or [])
    if kind in ("frame", "series"):
        import pandas as pd

        try:
            frame = pd.read_parquet(base.with_name(base.name + ".parquet"))
        except Exception:  # noqa: BLE001 - a resident-made file that does not parse
            return Unsupported("unreadable parquet")
        if kind == "series":
            series = frame["__value__"] if "__value__" in frame else frame.iloc[:, 0]
            return series.rename(rec.get("name"))
        return frame
    if kind == "unsupported":
        return Unsupported(str(rec.get("unsupported")))
    return Missing("missing")


def _is_link_out(path: Path, directory) -> bool:
    if path.is_symlink():
        return True
    if not path.exists():
        return False
    return path.resolve().parent != Path(directory).resolve()


def _hashable(x):
    if isinstance(x, list):
        return tuple(_hashable(i) for i in x)
    if isinstance(x, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in x.items()))
    return x
