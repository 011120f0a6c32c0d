"""Label Studio as the annotator of a :class:`~activelearn.file_oracle.FileOracle` run.

A run with ``--oracle file`` writes ``query_<id>.json`` (and one PNG per sample
when it has the inputs) into its oracle folder, then waits for
``answers_<id>.json``.  This module turns a query into Label Studio tasks and a
Label Studio JSON export back into that answers file, so the answers go
through the file oracle's own checks (unknown or repeated index, label out of
range, missing answers) when the run resumes::

    from activelearn import labelstudio
    labelstudio.export_tasks("run1/oracle/query_c001-3fa2b1.json", class_names=[str(c) for c in range(10)])
    # -> run1/oracle/query_c001-3fa2b1.labelstudio.json (import it into a project whose
    #    labeling interface is labelstudio.labeling_config(class_names))
    labelstudio.import_export("project-1-at-....json", "run1/oracle/query_c001-3fa2b1.json", class_names=[...])
    # -> run1/oracle/answers_c001-3fa2b1.json; then: activelearn run --resume run1

Each task carries the pool index in ``data["al_index"]``; the image is the
query's PNG, referenced through Label Studio's local-files URL
(``/data/local-files/?d=<path>``, which needs ``LOCAL_FILES_SERVING_ENABLED``)
or any ``image_url`` template you pass.  An annotation's single choice is a class
name from ``class_names`` or :data:`NOT_IN_TASK`.  Of several annotations of a
task, the last one not cancelled counts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from .checkpoint import atomic_write_text
from .exceptions import AnswersInvalid, InvalidParameterError, OutputError

__all__ = ["NOT_IN_TASK", "labeling_config", "export_tasks", "import_export"]

#: the choice an annotator picks for a sample outside the task (open-set pools)
NOT_IN_TASK = "not in task"


def _check_names(class_names: Sequence[str]) -> list[str]:
    names = [str(c) for c in class_names]
    if not names or len(set(names)) != len(names) or NOT_IN_TASK in names:
        raise InvalidParameterError(
            f"class_names must be distinct, non-empty and not {NOT_IN_TASK!r}, got {list(class_names)!r}"
        )
    return names


def labeling_config(class_names: Sequence[str], *, open_set: bool = False) -> str:
    """The labeling interface XML: one image, one single choice among the classes (and "not in task")."""
    names = _check_names(class_names) + ([NOT_IN_TASK] if open_set else [])
    choices = "\n".join(f"    <Choice value={quoteattr(n)}/>" for n in names)
    return (
        '<View>\n  <Image name="image" value="$image"/>\n'
        f'  <Choices name="label" toName="image" choice="single" showInLine="true">\n{choices}\n  </Choices>\n</View>\n'
    )


def _write(target: Path, text: str) -> None:
    try:
        atomic_write_text(target, text)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}; free space or make its folder writable, or pass out=") from exc


def _read_query(query_file: str | Path) -> dict[str, Any]:
    path = Path(query_file)
    try:
        query = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidParameterError(f"cannot read the query file {path}: {exc}") from exc
    if not isinstance(query, dict) or not isinstance(query.get("indices"), list) or "answers_json" not in query:
        raise InvalidParameterError(f"{path} is not a FileOracle query file (needs 'indices' and 'answers_json')")
    return query


def export_tasks(
    query_file: str | Path,
    out: str | Path | None = None,
    *,
    image_url: str = "/data/local-files/?d={path}",
) -> Path:
    """Write the query's samples as Label Studio tasks (JSON list) and return the file's path.

    Parameters
    ----------
    query_file : path
        A ``query_<id>.json`` written by the file oracle.
    out : path, optional
        Default: ``query_<id>.labelstudio.json`` beside the query.
    image_url : str
        Template of each task's image address; ``{path}`` is the PNG's absolute
        path, ``{index}`` the pool index.  Tasks of a query without PNGs (the run
        had no image inputs) carry only the index.
    """
    path = Path(query_file)
    query = _read_query(path)
    folder = path.with_suffix("")
    tasks = []
    for i in query["indices"]:
        data: dict[str, Any] = {"al_index": int(i), "al_cycle": int(query.get("cycle", -1))}
        png = folder / f"{int(i)}.png"
        if png.is_file():
            data["image"] = image_url.format(path=str(png.resolve()), index=int(i))
        tasks.append({"data": data})
    target = Path(out) if out is not None else path.with_name(path.stem + ".labelstudio.json")
    _write(target, json.dumps(tasks, indent=1))
    return target


def _choice(task: dict[str, Any], where: str, problems: list[str]) -> str | None:
    """The single choice of the task's last annotation that was not cancelled."""
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not annotations:
        problems.append(f"{where}: no annotation (or only cancelled ones)")
        return None
    choices = [
        c for r in annotations[-1].get("result") or [] if isinstance(r, dict) and r.get("type") == "choices"
        for c in (r.get("value") or {}).get("choices") or []
    ]
    if len(choices) != 1:
        problems.append(f"{where}: expected one choice in the last annotation, got {choices!r}")
        return None
    return str(choices[0])


def import_export(
    export_file: str | Path,
    query_file: str | Path,
    class_names: Sequence[str],
    *,
    out: str | Path | None = None,
) -> Path:
    """Turn a Label Studio JSON export into the query's ``answers_<id>.json`` and return its path.

    Every task must carry ``data["al_index"]`` (as :func:`export_tasks` writes it)
    and one choice.  The file oracle checks the result when the run resumes; a
    malformed export is refused here as a whole with
    :class:`~activelearn.exceptions.AnswersInvalid` listing each bad task.
    """
    names = _check_names(class_names)
    query = _read_query(query_file)
    try:
        tasks = json.loads(Path(export_file).read_text())
    except (OSError, ValueError) as exc:
        raise AnswersInvalid(f"cannot read the Label Studio export {export_file}: {exc}") from exc
    if not isinstance(tasks, list):
        raise AnswersInvalid(f"{export_file}: a Label Studio JSON export is a list of tasks, got {type(tasks).__name__}")
    problems: list[str] = []
    rows = []
    for n, task in enumerate(tasks):
        where = f"task {task.get('id', n) if isinstance(task, dict) else n}"
        index = (task.get("data") or {}).get("al_index") if isinstance(task, dict) else None
        if isinstance(index, bool) or not isinstance(index, int):
            problems.append(f"{where}: data.al_index {index!r} is not a pool index (export the tasks with export_tasks)")
            continue
        choice = _choice(task, where, problems)
        if choice is None:
            continue
        if choice == NOT_IN_TASK:
            rows.append({"index": index, "label": None, "in_task": False})
        elif choice in names:
            rows.append({"index": index, "label": names.index(choice)})
        else:
            problems.append(f"{where}: choice {choice!r} is none of the classes {names} or {NOT_IN_TASK!r}")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise AnswersInvalid(f"{export_file} refused, nothing was written: {shown}")
    target = Path(out) if out is not None else Path(query_file).with_name(query["answers_json"])
    _write(target, json.dumps(rows, indent=1))
    return target
