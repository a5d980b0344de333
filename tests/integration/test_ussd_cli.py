"""`tdbot run` gives the USSD gateway a token and says where to call; `tdbot ussd` dials the menu from a terminal."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gateway import cli
from gateway.cli import main
from tests.integration.test_cli import run_env, served  # noqa: F401 (fixtures)
from tests.support.ussd import USSD_TOKEN


def test_run_makes_a_ussd_token_that_the_other_commands_share(run_env) -> None:  # noqa: F811
    config = cli._run_config()
    cli._write_runtime({**config, "BASE_URL": "http://127.0.0.1:5000"})
    token = config["TDBOT_USSD_TOKEN"]
    assert len(bytes.fromhex(token)) == 16
    assert cli._config()["TDBOT_USSD_TOKEN"] == token, "tdbot ussd calls with the token the app checks"
    run_env.setenv("TDBOT_USSD_TOKEN", "ours")
    assert cli._run_config()["TDBOT_USSD_TOKEN"] == "ours"


def test_run_prints_the_callback_urls_with_the_token(capsys) -> None:
    config = {"REDIS_URL": "redis://", "TDBOT_API_TOKEN": "api", "TDBOT_USSD_TOKEN": "t0k3n",
              "PUBLIC_BASE_URL": "https://tdbot.example.com"}
    cli._banner(config, "http://127.0.0.1:5000", with_demo=True)
    out = capsys.readouterr().out
    assert "https://tdbot.example.com/webhooks/ussd?token=t0k3n" in out
    assert "https://tdbot.example.com/webhooks/ussd/events?token=t0k3n" in out
    assert "tdbot ussd +8613800138000" in out


def dial(base: str, tmp_path: Path, keys: str, token: str = USSD_TOKEN):
    """`tdbot ussd` as run after `tdbot run` (the token and URL from its runtime file), pressing `keys`."""
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / cli.RUNTIME_FILE).write_text(json.dumps({"TDBOT_USSD_TOKEN": token, "BASE_URL": base}))
    env = {"TDBOT_DATA_DIR": str(tmp_path / "data"), "TDBOT_USSD_TOKEN": ""}
    return CliRunner().invoke(main, ["ussd", "--linger", "0", "+8613800138000"], input=keys, env=env,
                              catch_exceptions=False)


def test_ussd_shows_each_screen_until_the_phone_hangs_up(served, redis_url, tmp_path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("REDIS_URL", redis_url)
    result = dial(served, tmp_path, "2\n1\n")
    assert result.exit_code == 0, result.output
    assert "CON 请选择：\n1 我的业务" in result.output
    assert "CON 请选择要退订的业务：\n1.视频会员" in result.output
    assert "CON 您将退订1项：\n视频会员（15.00元/月）" in result.output


def test_ussd_stops_at_an_end_screen(served, redis_url, tmp_path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("REDIS_URL", redis_url)
    result = dial(served, tmp_path, "4\n2\n")
    assert result.exit_code == 0 and result.output.rstrip().endswith("人工转客服。")
    assert result.output.count("CON ") == 1 and result.output.count("END ") == 1


def test_ussd_says_when_the_app_refuses_it(served, redis_url, tmp_path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("REDIS_URL", redis_url)
    result = dial(served, tmp_path, "2\n", token="wrong")
    assert result.exit_code == 0 and "END (HTTP 403)" in result.output
