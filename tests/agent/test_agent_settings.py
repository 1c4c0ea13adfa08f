"""The agent's settings: flags over environment over TOML, and every refusal at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.settings import AgentSettings, SettingsError, endpoint, load

TOKEN = ["--token", "t0ken"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    s = load(TOKEN, {})
    assert (s.server, s.interval, s.batch, s.transport, s.names, s.once) == (
        "http://127.0.0.1:8000",
        10.0,
        1,
        "ws",
        (),
        False,
    )
    assert s.host  # this host's name, lower-cased
    assert s.host == s.host.lower()
    assert s.spool.name == "spool" and "hostpulse-agent" in str(s.spool)


def test_flags_win_over_environment_over_file(tmp_path: Path) -> None:
    config = write(
        tmp_path / "agent.toml",
        'server = "http://file:1"\ntoken = "from-file"\ninterval = 3\nbatch = 4\nhost = "file-host"\n'
        'spool = "spool-dir"\nnames = ["virtual_memory"]\n',
    )
    env = {"HOSTPULSE_AGENT_INTERVAL": "2.5", "HOSTPULSE_AGENT_HOST": "Env-Host", "HOSTPULSE_AGENT_BATCH": "6"}
    s = load(["--config", str(config), "--batch", "7"], env)
    assert s.server == "http://file:1" and s.token == "from-file"  # file only
    assert s.interval == 2.5 and s.host == "env-host"  # environment over file
    assert s.batch == 7  # flag over both
    assert s.names == ("virtual_memory",)
    assert s.spool == tmp_path / "spool-dir"  # relative to the file
    assert s.config == config


def test_config_file_from_the_environment_and_names_from_flags(tmp_path: Path) -> None:
    config = write(tmp_path / "a.toml", 'token = "x"\nnames = ["cpu_percent"]\n')
    s = load(["swap_memory", "pids"], {"HOSTPULSE_AGENT_CONFIG": str(config)})
    assert s.token == "x" and s.names == ("swap_memory", "pids")
    assert load([], {"HOSTPULSE_AGENT_CONFIG": str(config), "HOSTPULSE_AGENT_NAMES": "a, b"}).names == ("a", "b")


def test_endpoints_are_derived_from_the_base_url() -> None:
    assert endpoint("http://h:8000", "/ws/agent", websocket=True) == "ws://h:8000/ws/agent"
    assert endpoint("https://h/base/", "/ws/agent", websocket=True) == "wss://h/base/ws/agent"
    assert endpoint("wss://h:9", "/ingest", websocket=False) == "https://h:9/ingest"
    assert endpoint("ws://h", "/", websocket=False) == "http://h/"
    s = AgentSettings(server="ws://example.org:81/x", token="t", host="h")
    assert (s.ws_url, s.ingest_url, s.legacy_url) == (
        "ws://example.org:81/x/ws/agent",
        "http://example.org:81/x/ingest",
        "http://example.org:81/x/",
    )


@pytest.mark.parametrize(
    "argv, env, words",
    [
        ([], {}, "no token"),
        (TOKEN + ["--server", "ftp://h"], {}, "server must be"),
        (TOKEN + ["--server", "http://"], {}, "server must be"),
        (TOKEN + ["--server", "http://h/?q=1"], {}, "without query"),
        (TOKEN + ["--interval", "0"], {}, "interval"),
        (TOKEN + ["--interval", "abc"], {}, "interval must be a float"),
        (TOKEN + ["--batch", "0"], {}, "batch"),
        (TOKEN + ["--batch", "1001"], {}, "batch"),
        (TOKEN + ["--spool-size", "100"], {}, "spool_size"),
        (TOKEN + ["--host", "bad_host"], {}, "RFC 1123"),
        (TOKEN + ["--flush-timeout", "-1"], {}, "flush_timeout"),
        (TOKEN + ["--log-level", "loud"], {}, "log_level"),
        (TOKEN, {"HOSTPULSE_AGENT_TRANSPORT": "udp"}, "transport"),
        (TOKEN, {"HOSTPULSE_AGENT_BATCH": "many"}, "HOSTPULSE_AGENT_BATCH"),
    ],
)
def test_unusable_settings_are_refused_with_a_clear_message(argv: list[str], env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        load(argv, env)


def test_bad_config_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown key"):
        load(["--config", str(write(tmp_path / "a.toml", 'token = "x"\ntokn = "y"\n'))], {})
    with pytest.raises(SettingsError, match="a.toml"):
        load(["--config", str(write(tmp_path / "a.toml", "token = \n"))], {})
    with pytest.raises(SettingsError, match="cannot read"):
        load(["--config", str(tmp_path / "missing.toml")], {})
    with pytest.raises(SettingsError, match="interval must be a float"):
        load(["--config", str(write(tmp_path / "a.toml", 'token = "x"\ninterval = true\n'))], {})
    with pytest.raises(SettingsError, match="names"):
        load(["--config", str(write(tmp_path / "a.toml", 'token = "x"\nnames = [1]\n'))], {})


def test_a_bad_transport_flag_is_an_argparse_error() -> None:
    with pytest.raises(SystemExit) as info:
        load(TOKEN + ["--transport", "udp"], {})
    assert info.value.code == 2
