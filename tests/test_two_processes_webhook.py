"""Two real bot processes (`python -m bot`) in webhook mode on one PostgreSQL database, fed
in turn as a load balancer would: kill -9 of one after it answered Telegram for updates
whose "accepted" messages had not gone out yet. Telegram never sends an answered update
again, so each of those jobs must already be saved; the other process runs them all.

Before jobs were saved ahead of their status message (issue 11), the killed process's
answered /imagine were lost: 112-120 of 600 in the kill-one bench."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bot.telegram.webhook import SECRET_HEADER
from tests.bot_process import BotProcess, free_port, until, write_config
from tests.fakes.arta_server import FakeArta
from tests.fakes.telegram_api import FakeBot, FakeTelegram
from tests.harness import TOKEN

SECRET = "two-process-webhook-secret"
PROMPTS = [f"webhook fox {n}" for n in range(6)]


async def _deliver_in_turn(bot: FakeBot, ports: list[int]) -> list[int]:
    """Play Telegram behind a round-robin balancer: POST each queued update to the next
    process; return the answers' statuses."""
    statuses = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for turn, update in enumerate(list(bot.pending_updates)):
            port = ports[turn % len(ports)]
            url = f"http://127.0.0.1:{port}/telegram/{bot.id}"
            async with http.post(url, json=update, headers={SECRET_HEADER: SECRET}) as answer:
                statuses.append(answer.status)
    bot.pending_updates.clear()
    return statuses


async def test_kill_9_of_a_webhook_process_after_it_answered_loses_no_imagine(
    tmp_path: Path, pg_url: str
) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta:
        bot = tg.add_bot(TOKEN, "arta_test1_bot")
        ports = [free_port(), free_port()]
        configs = []
        for name, port in zip(("first", "second"), ports, strict=True):
            (tmp_path / name).mkdir()
            configs.append(
                write_config(
                    tmp_path / name / "config.toml",
                    tg,
                    arta,
                    (TOKEN,),
                    # A short lease: the killed process's jobs are taken over 3 s after
                    # its last heartbeat rather than 30 s.
                    database={"url": pg_url, "lease_seconds": 3.0},
                    webhook={
                        "base_url": "https://bot.example.com",
                        "secret": SECRET,
                        "host": "127.0.0.1",
                        "port": port,
                    },
                )
            )
        chats = []
        for n in range(len(PROMPTS)):
            user = tg.user(2001 + n, first_name=f"User{n}")
            chats.append((tg.private_chat(user), user))
        webhook = {"BOT_MODE": "webhook"}
        async with (
            BotProcess(configs[0], tg, env=webhook) as first,
            BotProcess(configs[1], tg, env=webhook) as second,
        ):
            for process in (first, second):
                await until(
                    lambda p=process: (
                        "webhook server listening" in p.log  # type: ignore[misc]
                        or p.returncode is not None
                    ),
                    "both processes to serve the webhook",
                )
                assert process.returncode is None, process.log

            # Every status message is stuck, as behind a long send-pacing queue; the
            # pictures stay unfinished at ARTA.
            tg.hold("sendMessage")
            for prompt in PROMPTS:
                arta.hold(prompt)
            for (chat, user), prompt in zip(chats, PROMPTS, strict=True):
                tg.send_text(bot, chat, user, f"/imagine {prompt} --model flux")
            assert await _deliver_in_turn(bot, ports) == [200] * len(PROMPTS)
            assert first.log.count("event=accepted") == len(PROMPTS) // 2, first.log
            # Mid-work: every job is at ARTA with its record id saved (not in the one
            # resubmission window, between ARTA's answer and that write), and no status
            # message has gone out.
            await until(
                lambda: (
                    first.log.count("event=submitted") + second.log.count("event=submitted")
                    == len(PROMPTS)
                ),
                "every job to be submitted",
            )
            assert len(arta.records) == len(PROMPTS)
            assert not [c for c in tg.calls("sendMessage") if c.ok]

            first.kill()
            assert await first.wait() == -9
            tg.release("sendMessage")
            for prompt in PROMPTS:
                arta.release(prompt)

            await tg.wait_for(
                lambda: all(tg.albums(bot, chat) for chat, _ in chats),
                90,
                what="an album in every chat",
            )
            await tg.wait_idle(timeout=30)
            second.terminate()
            assert await second.wait() == 0, second.log
            assert "Traceback" not in second.log, second.log

        assert [len(tg.albums(bot, chat)) for chat, _ in chats] == [1] * len(PROMPTS)
        assert dict(arta.submits_by_prompt) == dict.fromkeys(PROMPTS, 1)
