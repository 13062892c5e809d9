"""Waiting jobs served round-robin across users, so one user's ten jobs block nobody."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

UserKey = TypeVar("UserKey", bound=Hashable)


class FairQueue(Generic[UserKey]):
    """Job ids per user; `pop` takes the next user in turn who is allowed to start one."""

    def __init__(self) -> None:
        self._jobs: dict[UserKey, deque[int]] = {}
        # Users with waiting jobs, in the order they get their next turn.
        self._turns: deque[UserKey] = deque()
        self._owner: dict[int, UserKey] = {}

    def __len__(self) -> int:
        return len(self._owner)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._owner

    def push(self, user: UserKey, job_id: int) -> None:
        if job_id in self._owner:
            return
        self._owner[job_id] = user
        if user not in self._jobs:
            self._jobs[user] = deque()
            self._turns.append(user)
        self._jobs[user].append(job_id)

    def remove(self, job_id: int) -> bool:
        user = self._owner.pop(job_id, None)
        if user is None:
            return False
        jobs = self._jobs[user]
        jobs.remove(job_id)
        if not jobs:
            del self._jobs[user]
            self._turns.remove(user)
        return True

    def pop(self, may_start: Callable[[UserKey], bool]) -> tuple[UserKey, int] | None:
        """The first job of the first user in turn for whom `may_start` holds."""
        for _ in range(len(self._turns)):
            user = self._turns[0]
            self._turns.rotate(-1)
            if not may_start(user):
                continue
            jobs = self._jobs[user]
            job_id = jobs.popleft()
            del self._owner[job_id]
            if not jobs:
                del self._jobs[user]
                self._turns.pop()  # the user just rotated to the back
            return user, job_id
        return None

    def positions(self) -> dict[int, int]:
        """1-based place of every waiting job if every user could start at once.

        One pass over the queue, so a refresh of every status message costs O(n).
        """
        return {job_id: place for place, job_id in enumerate(self._service_order(), start=1)}

    def _service_order(self) -> Iterator[int]:
        queues = [list(self._jobs[user]) for user in self._turns]
        depth = 0
        while queues:
            queues = [jobs for jobs in queues if len(jobs) > depth]
            for jobs in queues:
                yield jobs[depth]
            depth += 1
