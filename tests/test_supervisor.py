"""The process supervisor's promises: private files, logs only ever appended, restarts that
back off."""

from __future__ import annotations

import asyncio
import stat
import sys
from pathlib import Path

from devrun import Process, write_private
from devrun.runner import MAX_BACKOFF, backoff


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_restarted_process_appends_to_its_private_log(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    log = logs / "job.log"
    log.write_text("the run that crashed\n")
    log.chmod(0o644)
    job = Process("job", [sys.executable, "-c", "print('attempt')"], log)
    for _ in range(2):
        job.start()
        assert job.popen is not None
        assert await asyncio.to_thread(job.popen.wait, 30) == 0
    text = log.read_text()
    assert text.startswith("the run that crashed\n")
    assert text.count("=== ") == 2 and text.count("attempt\n") == 2
    assert job.output() == "attempt\n", "output() reads this run only"
    assert (mode(logs), mode(log)) == (0o700, 0o600)


def test_private_files_are_replaced_whole_and_owner_only(tmp_path: Path) -> None:
    token = tmp_path / "api-token"
    token.write_text("old")
    token.chmod(0o644)
    write_private(token, "new\n")
    assert token.read_text() == "new\n" and mode(token) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["api-token"]


def test_restarts_back_off_doubling_up_to_a_ceiling() -> None:
    assert [backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, MAX_BACKOFF, MAX_BACKOFF]
