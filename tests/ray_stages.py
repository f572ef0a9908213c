"""A stage for the Ray tests that Ray workers import (a helper module, not a test file)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from curation.quality import QualityFilter
from curation.stage import StageResult


@dataclass
class KillsItsWorkerOnce(QualityFilter):
    """The quality filter, but the first block it sees in a Ray worker kills that worker process."""

    marker: str = ""
    driver_pid: int = 0

    def __call__(self, items: pl.DataFrame) -> StageResult:
        if os.getpid() != self.driver_pid and not Path(self.marker).exists():
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(items)
