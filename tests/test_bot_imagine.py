"""/imagine end to end: a user message goes into the fake Bot API, the album comes out."""

from __future__ import annotations

from pathlib import Path

from tests.harness import running_bot


async def test_imagine_with_model_sends_an_album_with_caption(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(
            stack.bot,
            chat,
            user,
            "/imagine a fox in the snow --model flux -n 2 --ar 16:9 --seed 7",
        )
        album = await stack.wait_album(chat)
        assert len(album) == 2
        assert "a fox in the snow" in (album[0].caption or "")
        record = stack.arta.record_for("a fox in the snow")
        assert record is not None
        assert record.form["style"] == "Flux"
        assert record.form["aspect_ratio"] == "16:9"
        assert record.form["images_num"] == "2"
        assert record.form["seed"] == "7"
        await stack.wait_text(chat, "Ready")
