"""A job's saved state moved on without this runner: another process, or a Cancel, won.

Every state change is a guarded UPDATE that returns False when the job is no longer in
the state the runner expected. Going on regardless would deliver a cancelled job's
pictures, or send an album a second process is already sending; the runner stops its
work on the job instead (issue 11).
"""

from __future__ import annotations


class TransitionLostError(Exception):
    """Raised inside a job's task when a guarded state change found the job moved on."""

    def __init__(self, job_id: int, transition: str) -> None:
        super().__init__(f"job {job_id}: {transition} lost, the job had moved on")
        self.job_id = job_id
        self.transition = transition
