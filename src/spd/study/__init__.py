"""The study: does SPD help? The ablation variants trained at equal steps and seeds through
:func:`spd.training.train`, scored in domain, across domains and on held-out subsets, with learning
curves and task-gradient cosines; its report (``spd report --study``)."""

from .driver import ARMS, StudyOptions, run_study
from .report import preset_family, study_variants, write_study_report
from .task_gradients import TaskGradientCosine, read_task_gradients

__all__ = ["ARMS", "StudyOptions", "TaskGradientCosine", "preset_family", "read_task_gradients", "run_study",
           "study_variants", "write_study_report"]
