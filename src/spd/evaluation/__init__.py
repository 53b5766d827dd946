"""Evaluation and reporting, without Lightning: the official metrics over a dataset split for a
model or for saved predictions of any method, results as JSON / Markdown / figures, and the
comparison tables of ``spd report``."""

from .evaluate import evaluate_model, evaluate_predictions, load_model
from .evaluator import EvalResult, Evaluator, write_result
from .report import write_report

__all__ = ["EvalResult", "Evaluator", "evaluate_model", "evaluate_predictions", "load_model", "write_report",
           "write_result"]
