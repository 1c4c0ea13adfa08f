"""The agent acts on the codes the service writes: both read them from hostpulse/errorcodes.py."""

from __future__ import annotations

from agent.transport import REFUSED_CODES, REFUSED_STATUSES, RETRY_CODES
from hostpulse.errorcodes import error_code


def test_the_agent_retries_what_the_service_answers_about_itself_or_the_token() -> None:
    assert RETRY_CODES == {error_code(status) for status in (401, 403, 429, 500, 503)}
    assert REFUSED_CODES == {error_code(status) for status in (401, 403)}


def test_what_refuses_a_batch_for_good_is_never_retried() -> None:
    assert not {error_code(status) for status in REFUSED_STATUSES} & RETRY_CODES
