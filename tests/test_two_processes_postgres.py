"""Two real bot processes (`python -m bot`) on one PostgreSQL database, polling mode: one
leads, the other stands by; kill -9 of the leader mid-generation, and the standby takes
over, finishes the job by its record id (no second submission) and never conflicts with
another getUpdates."""

from __future__ import annotations

from pathlib import Path

from tests.bot_process import BotProcess, until, write_config
from tests.fakes.arta_server import FakeArta
from tests.fakes.telegram_api import FakeTelegram
from tests.harness import TOKEN


async def test_kill_9_of_the_leader_mid_generation_the_standby_finishes_the_job_once(
    tmp_path: Path, pg_url: str
) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta:
        bot = tg.add_bot(TOKEN, "arta_test1_bot")
        configs = []
        for name in ("first", "second"):
            (tmp_path / name).mkdir()
            configs.append(
                write_config(
                    tmp_path / name / "config.toml",
                    tg,
                    arta,
                    (TOKEN,),
                    # A short lease: the killed leader's job is taken over 3 s after
                    # its last heartbeat rather than 30 s.
                    database={"url": pg_url, "lease_seconds": 3.0},
                )
            )
        user = tg.user(1001, first_name="Alice")
        chat = tg.private_chat(user)
        # One after the other, so which one leads is known.
        async with BotProcess(configs[0], tg) as first:
            await first.wait_polling(bot)
            async with BotProcess(configs[1], tg) as second:
                await until(lambda: "standing by" in second.log, "the second to stand by")

                arta.hold("generate me")
                tg.send_text(bot, chat, user, "/imagine generate me --model flux -n 2")
                record = await arta.wait_for_record("generate me")
                await arta.wait_for(lambda: arta.status_polls[record.record_id] >= 2)
                first.kill()
                assert await first.wait() == -9
                arta.release("generate me")

                await tg.wait_for(
                    lambda: len(tg.albums(bot, chat)) == 1, 90, what="the standby's album"
                )
                second.terminate()
                assert await second.wait() == 0, second.log
                assert "now leads" in second.log
                assert "Traceback" not in second.log, second.log

        assert dict(arta.submits_by_prompt) == {"generate me": 1}
        conflicts = [c for c in tg.calls("getUpdates", bot) if "Conflict" in (c.description or "")]
        assert conflicts == []
