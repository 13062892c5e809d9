"""Config: the file, the environment winning over it, and one clear line per mistake."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.config import ENVIRONMENT_KEYS, Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[telegram]\ntokens = "1:x"\n[database]\npath = "file.db"\n')
    config = load_config(
        path,
        {
            "BOT_TOKEN": f"{TOKEN}, 99:BBBBBBBBBBBBBBBBBBBBBBBBBBBB",
            "DATABASE_PATH": "env.db",
            "PORT": "5005",
            "BOT_MODE": "webhook",
            "WEBHOOK_URL": "https://x.example",
        },
    )
    assert config.require_tokens() == (TOKEN, "99:BBBBBBBBBBBBBBBBBBBBBBBBBBBB")
    assert config.database.path == "env.db"
    assert config.webhook.port == 5005
    assert config.mode == "webhook"


@pytest.mark.parametrize(
    ("text", "environ", "key"),
    [
        ("", {}, "telegram.tokens"),
        ("", {"BOT_TOKEN": "not-a-token"}, "telegram.tokens"),
        ("[limits]\nper_user_active = 0\n", {"BOT_TOKEN": TOKEN}, "limits.per_user_active"),
        ("[limits]\nmax_in_flite = 3\n", {"BOT_TOKEN": TOKEN}, "limits.max_in_flite"),
        ("[telegram\n", {"BOT_TOKEN": TOKEN}, "config.toml"),
        ("", {"BOT_TOKEN": TOKEN, "PORT": "http"}, "webhook.port"),
        ("", {"BOT_TOKEN": TOKEN, "LOG_LEVEL": "loud"}, "log.level"),
        ("", {"BOT_TOKEN": TOKEN, "BOT_MODE": "webhook"}, "webhook.base_url"),
    ],
)
def test_a_bad_value_names_its_key_and_never_echoes_a_token(
    tmp_path: Path, text: str, environ: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, text), environ).require_tokens()
    assert key in str(error.value)
    assert "AAAAAAAA" not in str(error.value) and "not-a-token" not in str(error.value)


def test_the_example_config_documents_every_key_with_its_default() -> None:
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    assert Config.model_validate(example) == Config()

    def keys(model: type, prefix: str = "") -> set[str]:
        found = set()
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                found |= keys(annotation, f"{prefix}{name}.")
            else:
                found.add(f"{prefix}{name}")
        return found

    leaves = keys(Config)

    def example_keys(table: dict, prefix: str = "") -> set[str]:
        found = set()
        for name, value in table.items():
            # A table-valued key (arta.headers.auth) is one key, not a section.
            if isinstance(value, dict) and f"{prefix}{name}" not in leaves:
                found |= example_keys(value, f"{prefix}{name}.")
            else:
                found.add(f"{prefix}{name}")
        return found

    assert leaves == example_keys(example)
    text = (ROOT / "config.example.toml").read_text()
    for variable in ENVIRONMENT_KEYS:
        assert variable in text, f"{variable} is not documented in config.example.toml"
