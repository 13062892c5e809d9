"""Pictures a synchronous service answered with as bytes wait in the database until their
album is sent, on either engine: a restart mid-delivery still has them to send."""

from __future__ import annotations

from bot.storage.interface import Storage
from bot.storage.records import JobParams, NewJob, StoredImage

# Every byte value and a NUL: a text column or an encoding step would mangle them.
PICTURE = b"\x89PNG\r\n\x1a\n\x00" + bytes(range(256)) * 64
PARAMS = JobParams(
    prompt="a heron", model="openai:Base", negative_prompt="", aspect_ratio="1:1",
    images=2, steps=30, cfg=7.0, seed=None,
)  # fmt: skip


async def test_stored_pictures_come_back_byte_for_byte(storage: Storage) -> None:
    await storage.pictures.put(7, [(PICTURE, "image/png"), (b"jpeg", "image/jpeg")])
    assert await storage.pictures.get(7, 1) == (PICTURE, "image/png")
    assert await storage.pictures.get(7, 2) == (b"jpeg", "image/jpeg")
    assert await storage.pictures.get(7, 3) is None
    assert await storage.pictures.get(8, 1) is None


async def test_storing_again_replaces_the_jobs_pictures(storage: Storage) -> None:
    await storage.pictures.put(7, [(b"old", "image/png"), (b"old2", "image/png")])
    await storage.pictures.put(7, [(b"new", "image/webp")])
    assert await storage.pictures.get(7, 1) == (b"new", "image/webp")
    assert await storage.pictures.get(7, 2) is None


async def test_delivered_pictures_are_deleted(storage: Storage) -> None:
    await storage.pictures.put(7, [(PICTURE, "image/png")])
    await storage.pictures.put(8, [(PICTURE, "image/png")])
    await storage.pictures.delete(7)
    assert await storage.pictures.get(7, 1) is None
    assert await storage.pictures.get(8, 1) == (PICTURE, "image/png")


async def test_only_pictures_of_jobs_waiting_for_delivery_survive_the_sweep(
    storage: Storage,
) -> None:
    jobs = storage.jobs
    sending = await jobs.create(NewJob(bot_id=1, chat_id=1, user_id=1, params=PARAMS), now=1.0)
    await jobs.mark_submitted(sending.id, None, now=2.0, provider="openai")
    await jobs.mark_delivering(sending.id, (StoredImage("blob:1"),), None, now=3.0, polls=0)
    finished = await jobs.create(NewJob(bot_id=1, chat_id=1, user_id=1, params=PARAMS), now=1.0)
    await jobs.mark_failed(finished.id, "timeout", None, now=2.0)
    for job_id in (sending.id, finished.id, 999):
        await storage.pictures.put(job_id, [(PICTURE, "image/png")])
    assert await storage.pictures.delete_orphans() == 2
    assert await storage.pictures.get(sending.id, 1) == (PICTURE, "image/png")
    assert await storage.pictures.get(finished.id, 1) is None
    assert await storage.pictures.get(999, 1) is None
