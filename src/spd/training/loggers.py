"""Run logs (CSV and TensorBoard) that a resumed run continues instead of starting a new version
folder beside them."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

VERSION = re.compile(r"version_(\d+)$")


class ContinuingExperimentWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing ``metrics.csv``; this one appends to it (taking
    its columns from the file's header)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = next(csv.reader(f), [])


class RunCSVLogger(CSVLogger):
    @property
    @rank_zero_experiment
    def experiment(self) -> ContinuingExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuingExperimentWriter(log_dir=self.log_dir)
        return self._experiment


def latest_version(folder: Path) -> int | None:
    """The highest ``version_N`` under ``folder``, if any."""
    versions = [int(m.group(1)) for p in folder.glob("version_*") if p.is_dir() and (m := VERSION.match(p.name))]
    return max(versions, default=None)


def run_loggers(run_dir: Path, resume: bool) -> list:
    """CSV logs in ``RUN/logs/version_N``, TensorBoard in ``RUN/tensorboard/version_N``; a resumed run
    writes on in the latest versions."""
    csv_version = latest_version(run_dir / "logs") if resume else None
    tb_version = latest_version(run_dir / "tensorboard") if resume else None
    return [RunCSVLogger(run_dir, name="logs", version=csv_version),
            TensorBoardLogger(run_dir, name="tensorboard", version=tb_version)]
