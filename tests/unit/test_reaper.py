"""A settled object lists its owned deployments again every `reap` seconds (issue 15 item 1), so
extras are found; in between it only GETs the recorded one."""

from __future__ import annotations

from embedding_operator.backends.aicore import Reaper


def test_due_first_then_only_after_the_interval():
    now = [100.0]
    reaper = Reaper(300, clock=lambda: now[0])
    assert reaper.due("m-1234abcd-")
    reaper.scanned("m-1234abcd-")
    now[0] += 299
    assert not reaper.due("m-1234abcd-")
    assert reaper.due("other-")  # per object
    now[0] += 1
    assert reaper.due("m-1234abcd-")
