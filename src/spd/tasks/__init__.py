"""Tasks: what the model predicts, one module per task (see :mod:`.base` for what a task declares).
The built-in tasks are registered here; :func:`register` adds one of a user's."""

from .base import Column, Output, Scoring, Targets, Task, TaskMetric, Writer
from .densepose import DENSEPOSE, NUM_DP_PARTS
from .parsing import PARSING
from .pose import POSE
from .registry import get_task, output_owner, register, task_names, tasks_of, unregister

for _task in (PARSING, POSE, DENSEPOSE):
    register(_task)

__all__ = ["Column", "DENSEPOSE", "NUM_DP_PARTS", "Output", "PARSING", "POSE", "Scoring", "Targets", "Task",
           "TaskMetric", "Writer", "get_task", "output_owner", "register", "task_names", "tasks_of", "unregister"]
