"""The tasks a model may have, by name. The built-in ones (parsing, pose, densepose) are registered
when :mod:`spd.tasks` is imported; :func:`register` adds another (see docs/architecture.md,
"Adding a task"), :func:`unregister` removes it again."""

from __future__ import annotations

from ..ops.errors import UnknownName
from .base import JPPNET_HEADS, PYRAMID_RESIZES, STAGE_RULES, Task

_TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Adds ``task`` under ``task.name``; a name (or an output name) already taken is an error."""
    if not task.name or not task.name.isidentifier():
        raise ValueError(f"a task needs a name that is an identifier, got {task.name!r}")
    if task.name in _TASKS:
        raise ValueError(f"a task named {task.name!r} is registered already")
    if not task.outputs or not task.terms:
        raise ValueError(f"task {task.name!r} declares no outputs or no loss terms")
    taken = {o.name for t in _TASKS.values() for o in t.outputs} | {term for t in _TASKS.values() for term in t.terms}
    clash = [o.name for o in task.outputs if o.name in taken] + [t for t in task.terms if t in taken]
    if clash:
        raise ValueError(f"task {task.name!r}: output or term names {clash} belong to another task")
    kinds = {kind for t in _TASKS.values() for kind in t.writers} | {"overlay"}
    suffixes = {w.suffix for t in _TASKS.values() for w in t.writers.values()} | {"_overlay.jpg", "_overlay.mp4"}
    taken_files = [k for k in task.writers if k in kinds] + [w.suffix for w in task.writers.values() if w.suffix in suffixes]
    if taken_files:
        raise ValueError(f"task {task.name!r}: file kinds or suffixes {taken_files} belong to another task")
    for o in task.outputs:
        if o.stages not in STAGE_RULES:
            raise ValueError(f"task {task.name!r}, output {o.name!r}: stages must be one of {STAGE_RULES}")
    if task.jppnet_head not in JPPNET_HEADS or task.pyramid_resize not in PYRAMID_RESIZES:
        raise ValueError(f"task {task.name!r}: jppnet_head must be one of {JPPNET_HEADS}, pyramid_resize one of "
                         f"{PYRAMID_RESIZES}")
    _TASKS[task.name] = task
    return task


def unregister(name: str) -> None:
    """Removes a task added by :func:`register` (the built-in ones stay)."""
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is a built-in task")
    _TASKS.pop(name, None)


def get_task(name: str) -> Task:
    try:
        return _TASKS[name]
    except KeyError:
        raise UnknownName(f"unknown task {name!r}; known: {', '.join(_TASKS)}") from None


def task_names() -> tuple[str, ...]:
    return tuple(_TASKS)


def tasks_of(names) -> tuple[Task, ...]:
    """The Task of each name, in the given order."""
    return tuple(get_task(n) for n in names)


def output_owner(output: str) -> Task | None:
    """The task that has an output called ``output``."""
    for task in _TASKS.values():
        if any(o.name == output for o in task.outputs):
            return task
    return None


BUILT_IN = ("parsing", "pose", "densepose")
