"""The chaos suite's short form (``make chaos`` runs it with 50 incidents): incidents through
whole lifecycles while the worker is SIGKILLed at random, Slack fails writes (some after doing
them) and Temporal restarts; nothing may be lost or done twice."""

from __future__ import annotations

from tests import chaos


async def test_incidents_survive_killed_workers_failing_slack_and_a_temporal_restart() -> None:
    figures = await chaos.run(incidents=6, seed=3)
    figures.print()
    assert figures.worker_kills >= 2 and figures.server_restarts == 1, "the chaos did not happen"
    assert figures.clean, [*figures.duplicates, *figures.lost_timers, *figures.wrong_states]
