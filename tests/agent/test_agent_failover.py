"""The agent given several services: ``--server`` repeated or a TOML list (one string still
works), and failover between them when one cannot be reached, with real processes: two
Hypercorn nodes on one store (the same instance folder: one SQLite file shared by both), one
SIGKILLed while the agent streams. The agent carries on through the other, and every batch
it produced is stored exactly once, none acknowledged lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from agent.backoff import Backoff
from agent.settings import SettingsError, load
from agent.spool import Spool
from agent.transport import HttpSender, Refused
from tests.agent.live import AgentProcess, Service, eventually
from tests.agent.test_agent_faults import assert_exactly_once, stored_counts

TOKEN = ["--token", "t0ken"]


def test_servers_from_repeated_flags_a_toml_list_or_the_environment(tmp_path: Path) -> None:
    s = load([*TOKEN, "--server", "http://a:1", "--server", "http://b:2"], {})
    assert (s.server, s.failover, s.servers) == ("http://a:1", ("http://b:2",), ("http://a:1", "http://b:2"))
    config = tmp_path / "agent.toml"
    config.write_text('token = "x"\nserver = ["https://a", "https://b", "https://c"]\n')
    assert load(["--config", str(config)], {}).servers == ("https://a", "https://b", "https://c")
    env = {"HOSTPULSE_AGENT_SERVER": "http://e:1, http://f:2"}
    assert load(["--config", str(config)], env).servers == ("http://e:1", "http://f:2")  # environment over file
    assert load(["--config", str(config), "--server", "http://g"], env).servers == ("http://g",)  # flags over both
    config.write_text('token = "x"\nserver = "http://one:8000"\n')  # a single string, as before
    s = load(["--config", str(config)], {})
    assert (s.server, s.failover, s.servers) == ("http://one:8000", (), ("http://one:8000",))


@pytest.mark.parametrize(
    "argv, text, words",
    [
        (["--server", "http://a", "--server", "ftp://b"], "", "server must be"),
        (["--server", "http://a", "--server", "http://a"], "", "names a service twice"),
        ([], "server = []\n", "non-empty list of URLs"),
        ([], "server = [1]\n", "non-empty list of URLs"),
    ],
)
def test_bad_server_lists_are_refused(tmp_path: Path, argv: list[str], text: str, words: str) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=words):
        load([*TOKEN, "--config", str(config), *argv], {})


async def test_a_sender_tries_the_next_service_at_once_then_backs_off(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 20)
    try:
        async with aiohttp.ClientSession() as session:
            sender = HttpSender(["http://a/ingest", "http://b/ingest"], "t", spool, session, asyncio.Event())
            assert sender.url == "http://a/ingest"
            assert sender._fail_over() is True and sender.url == "http://b/ingest"  # next one at once
            assert sender._fail_over() is False and sender.url == "http://a/ingest"  # all failed: wait first
            assert sender._fail_over() is True and sender.url == "http://b/ingest"
            sender.on_answer({"ack": 0, "run": spool.run})  # an ack: the next failure fails over at once
            assert sender._fail_over() is True and sender.url == "http://a/ingest"
            single = HttpSender("http://only/ingest", "t", spool, session, asyncio.Event())
            assert single._fail_over() is False and single.url == "http://only/ingest"  # one service: as before
    finally:
        spool.close()


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[Service, Service]]:
    """Two Hypercorn nodes, each its own port, on one instance folder (one store)."""
    instance = tmp_path / "instance"
    nodes = (Service(instance), Service(instance))
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@pytest.mark.parametrize("transport", ["ws", "http"])
def test_sigkill_a_node_while_an_agent_streams(
    two_nodes: tuple[Service, Service], tmp_path: Path, transport: str
) -> None:
    first, second = two_nodes
    agent = AgentProcess(
        tmp_path / "agent", first.url, "failover-1", "--server", second.url, "--transport", transport, interval=0.1
    ).start()
    try:
        eventually(lambda: stored_counts(second).get(agent.host, 0) >= 5, "batches stored through the first node")
        assert "failing over" not in agent.text()
        first.kill()
        before = stored_counts(second)[agent.host]
        eventually(
            lambda: stored_counts(second).get(agent.host, 0) >= before + 10, "batches stored through the second node"
        )
        assert f"failing over to {second.url.replace('http', 'ws' if transport == 'ws' else 'http')}" in agent.text()
        assert agent.stop() == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()
    assert_exactly_once(second, [agent])


class RefusingEverywhere(HttpSender):
    """Every service refuses the token, at once."""

    tries: list[str]
    enough: asyncio.Event

    async def connection(self) -> None:
        self.tries.append(self.url)
        if len(self.tries) >= 8:
            self.enough.set()
        raise Refused("the service refused the token (HTTP 401)", "HTTP 401")


async def test_a_token_refused_by_every_service_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "spool", 1 << 20)
    try:
        async with aiohttp.ClientSession() as session:
            sender = RefusingEverywhere(["http://a/ingest", "http://b/ingest"], "t", spool, session, asyncio.Event())
            sender.tries, sender.enough = [], asyncio.Event()
            sender.refused_backoff = Backoff(0.01, 0.02)
            with caplog.at_level(logging.DEBUG, logger="hostpulse.agent"):
                running = asyncio.create_task(sender.run())
                await asyncio.wait_for(sender.enough.wait(), 30)
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
    finally:
        spool.close()
    assert sender.tries[:4] == ["http://a/ingest", "http://b/ingest"] * 2  # both, in turn
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 2, loud  # the first failover, then the refusal said once
    assert "failing over to http://b/ingest" in loud[0] and "refused the token" in loud[1]
