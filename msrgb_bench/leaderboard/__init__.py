"""The leaderboard evaluator: submissions, scoring, hidden test labels, store, server and page.

It never imports training code: it reads only the dataset contract
(:mod:`msrgb_bench.data.manifest`) and the submission format defined here.
"""

from __future__ import annotations

from msrgb_bench.leaderboard.errors import SubmissionError
from msrgb_bench.leaderboard.schema import SUBMISSION_SCHEMA_VERSION, SubmissionMeta
from msrgb_bench.leaderboard.submission import (
    read_submission,
    validate_submission,
    write_submission,
)

__all__ = [
    "SUBMISSION_SCHEMA_VERSION",
    "SubmissionError",
    "SubmissionMeta",
    "read_submission",
    "validate_submission",
    "write_submission",
]
