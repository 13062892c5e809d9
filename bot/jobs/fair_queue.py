"""Waiting jobs served round-robin across users, so one user's ten jobs block nobody."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

UserKey = TypeVar("UserKey", bound=Hashable)


class FairQueue(Generic[UserKey]):
    """Job ids per user; `pop` takes the next user in turn who is allowed to start one.

    Turns are counted in rounds (start-time fair queueing): a user's k-th waiting job
    belongs to round r + k, where r is the current round, or the round after the one their
    last started job belonged to. So a user who was just served waits behind someone who
    arrived later but has not had a turn yet, instead of going first again the moment
    their queue refills. Within a round, whoever has waited longest goes first.
    """

    def __init__(self) -> None:
        self._jobs: dict[UserKey, deque[int]] = {}
        self._owner: dict[int, UserKey] = {}
        # Round of each waiting user's first job, and when the user started waiting.
        self._round_of: dict[UserKey, int] = {}
        self._arrival: dict[UserKey, int] = {}
        # Round of the job each user started last; forgotten once it is in the past.
        self._served: dict[UserKey, int] = {}
        self._round = 0
        self._arrivals = itertools.count()

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
            self._round_of[user] = max(self._round, self._served.get(user, -1) + 1)
            self._arrival[user] = next(self._arrivals)
        self._jobs[user].append(job_id)

    def remove(self, job_id: int) -> bool:
        user = self._owner.pop(job_id, None)
        if user is None:
            return False
        jobs = self._jobs[user]
        jobs.remove(job_id)
        if not jobs:
            self._drop_user(user)
        return True

    def pop(self, may_start: Callable[[UserKey], bool]) -> tuple[UserKey, int] | None:
        """The first job of the user whose turn comes first among those `may_start` allows."""
        allowed = [user for user in self._jobs if may_start(user)]
        if not allowed:
            return None
        user = min(allowed, key=lambda u: (self._round_of[u], self._arrival[u]))
        job_round = self._round_of[user]
        jobs = self._jobs[user]
        job_id = jobs.popleft()
        del self._owner[job_id]
        self._served[user] = job_round
        self._round = max(self._round, job_round)
        if jobs:
            self._round_of[user] = job_round + 1
        else:
            self._drop_user(user)
        self._forget_old_rounds()
        return user, job_id

    def positions(self) -> dict[int, int]:
        """1-based place of every waiting job if every user could start at once."""
        order = sorted(
            (self._round_of[user] + depth, self._arrival[user], job_id)
            for user, jobs in self._jobs.items()
            for depth, job_id in enumerate(jobs)
        )
        return {job_id: place for place, (_, _, job_id) in enumerate(order, start=1)}

    def _drop_user(self, user: UserKey) -> None:
        del self._jobs[user]
        del self._round_of[user]
        del self._arrival[user]

    def _forget_old_rounds(self) -> None:
        # A user served before the current round gets the current round anyway; dropping
        # them keeps the map as small as the set of recently served users.
        if len(self._served) > 2 * len(self._jobs) + 64:
            self._served = {u: r for u, r in self._served.items() if r >= self._round}
