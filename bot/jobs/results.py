"""Where a finished job's pictures are fetched from for delivery: the bytes a synchronous
service answered with (kept in the database), or the URL the job's provider handed out."""

from __future__ import annotations

import asyncio

from bot.jobs.observer import DeliveryError, FailureKind
from bot.jobs.provider import Fetched
from bot.jobs.routing import ProviderSet
from bot.storage.interface import PictureStore
from bot.storage.pictures_repo import blob_number
from bot.storage.records import JobRecord, StoredImage


class ResultPictures:
    def __init__(self, providers: ProviderSet, store: PictureStore | None = None) -> None:
        self._providers = providers
        self._store = store

    def credit(self, job: JobRecord) -> tuple[str, str | None, str | None]:
        """The model to name in the caption, and (drawn by, instead of) service titles when
        failover moved the job to another service."""
        if job.failover_from is None or job.provider is None:
            return job.params.model, None, None
        drawn_by = self._providers.get(job.provider)
        meant = self._providers.get(job.failover_from)
        model = job.provider_model or job.params.model
        if drawn_by is not None:
            model = self._providers.qualified(drawn_by, model)
        return (
            model,
            drawn_by.title if drawn_by is not None else job.provider,
            meant.title if meant is not None else job.failover_from,
        )

    def drawn_ratio(self, job: JobRecord) -> str | None:
        """The aspect ratio the pictures were drawn at when the service that drew them has
        no size for the one asked (see ProviderLimits.nearest_ratios); else None."""
        provider = self._providers.get(job.provider) if job.provider is not None else None
        if provider is None:
            return None
        return dict(provider.limits.nearest_ratios).get(job.params.aspect_ratio)

    @staticmethod
    def stored_as_bytes(image: StoredImage) -> bool:
        """Telegram cannot fetch these by URL: they must be uploaded."""
        return blob_number(image.url) is not None

    async def fetch(self, job: JobRecord, image: StoredImage) -> Fetched:
        """The picture's bytes; DeliveryError(IMAGE) when they cannot be had."""
        number = blob_number(image.url)
        if number is not None:
            stored = await self._store.get(job.id, number) if self._store is not None else None
            if stored is None:
                raise DeliveryError(FailureKind.IMAGE, f"picture {number} is no longer stored")
            return Fetched(stored[0], stored[1])
        provider = self._providers.get(job.provider)
        if provider is None:
            raise DeliveryError(FailureKind.IMAGE, f"provider {job.provider!r} is not configured")
        try:
            return await provider.download(image.url)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            failure = provider.failure(error)
            if failure is None:
                raise
            raise DeliveryError(FailureKind.IMAGE, failure.detail) from None
