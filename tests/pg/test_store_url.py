"""``[store] url`` (and ``HOSTPULSE_STORE_URL``): empty or ``sqlite:///...`` for the embedded
store, ``postgresql://...`` for PostgreSQL; anything else is one line at ``hostpulse init``."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostpulse import cli
from hostpulse.settings import SettingsError, load, store_engine


@pytest.mark.parametrize(
    "url, engine",
    [
        ("", "sqlite"),
        ("sqlite:///hostpulse.sqlite3", "sqlite"),
        ("sqlite:////var/lib/hostpulse/store.sqlite3", "sqlite"),
        ("postgresql://hostpulse@127.0.0.1:5432/hostpulse", "postgresql"),
        ("postgres://db.example.org/pulse", "postgresql"),
        ("postgresql:///pulse?host=/var/run/postgresql", "postgresql"),
    ],
)
def test_engines(url: str, engine: str) -> None:
    assert store_engine(url) == engine


@pytest.mark.parametrize(
    "url, words",
    [
        ("mysql://h/db", "unknown scheme 'mysql'"),
        ("hostpulse.sqlite3", "unknown scheme"),
        ("sqlite://relative.db", "sqlite:///<path>"),
        ("sqlite:///", "sqlite:///<path>"),
        ("postgresql://u:secret@h:port/db", "not a PostgreSQL URL"),
    ],
)
def test_bad_urls_are_refused_without_echoing_a_password(url: str, words: str) -> None:
    with pytest.raises(SettingsError, match=words) as caught:
        store_engine(url)
    assert "secret" not in str(caught.value)


def test_the_url_from_the_file_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[store]\nurl = "sqlite:///data/store.sqlite3"\n')
    settings = load(tmp_path, {})
    assert settings.store.url == "sqlite:///data/store.sqlite3"
    assert settings.db_path == tmp_path / "data" / "store.sqlite3"  # relative to the instance folder
    url = "postgresql://hostpulse@127.0.0.1:5432/pulse"
    assert load(tmp_path, {"HOSTPULSE_STORE_URL": url}).store.url == url
    assert load(tmp_path, {"HOSTPULSE_STORE_URL": "sqlite:////abs/x.sqlite3"}).db_path == Path("/abs/x.sqlite3")


def test_init_refuses_a_bad_url_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTPULSE_STORE_URL", "mongodb://h/db")
    assert cli.main(["--instance", str(tmp_path / "instance"), "init"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown scheme 'mongodb'" in err and err.startswith("hostpulse: ")
    assert not (tmp_path / "instance" / "config.toml").exists()
