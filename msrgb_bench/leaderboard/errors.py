"""Error classes of the leaderboard evaluator.

They live here, beside the code that raises them, and derive from the toolkit's
:class:`~msrgb_bench.errors.MSRGBError` so that the command line turns them into clean messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from msrgb_bench.errors import FileProblemError, MSRGBError


class LeaderboardError(MSRGBError):
    """A leaderboard operation cannot be done (unknown team, duplicate team name, ...)."""


class SubmissionError(LeaderboardError):
    """A submission is invalid; the message lists every problem found.

    Args:
        problems: One short sentence per problem, e.g. ``"3 missing sample_id(s): 'a', 'b', 'c'"``.
        source: The file (or upload name) the submission came from, if any.
    """

    def __init__(self, problems: str | Sequence[str], source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        text = "; ".join(self.problems)
        super().__init__(f"{source}: {text}" if source else text)


class LabelFileError(FileProblemError):
    """The private label file is missing, malformed or does not fit the dataset."""


class ReleaseError(FileProblemError):
    """A public copy of a dataset cannot be made without leaking or losing something."""


class RateLimitedError(LeaderboardError):
    """A team submitted again before its interval was over.

    Args:
        retry_after: Seconds until the team may submit again.
    """

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"one submission per interval: try again in {retry_after:.0f} s")
