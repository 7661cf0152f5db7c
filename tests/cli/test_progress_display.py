"""The CLI's progress display (taco_eval/progress.py): bars on a terminal, plain lines elsewhere,
final counts equal to what the stages reported, from several threads at once."""

from __future__ import annotations

import io
import re
import threading

from taco_eval.progress import ProgressDisplay, _Stage
from tasks.progress import EXECUTE, GENERATE, ProgressEvent


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def feed_from_two_threads(display, units=400):
    """Generation and execution at once, as in `taco-eval run` (shard k+1 generates while shard k
    is judged); execution learns that a quarter of its samples are duplicates."""
    display(ProgressEvent(GENERATE, expected=units))
    display(ProgressEvent(EXECUTE, expected=units))

    def generate():
        for _ in range(units // 2):
            display(ProgressEvent(GENERATE, done=2, work=50, seconds=0.001))

    def execute():
        display(ProgressEvent(EXECUTE, expected=-units // 4))
        for _ in range(units * 3 // 4):
            display(ProgressEvent(EXECUTE, done=1, work=3, seconds=0.001))

    threads = [threading.Thread(target=generate), threading.Thread(target=execute)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_off_a_terminal_a_stage_writes_a_line_at_its_start_and_one_at_the_end():
    out = io.StringIO()
    with ProgressDisplay(stream=out, line_interval_s=3600) as display:
        feed_from_two_threads(display)
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[:2] == ["generate: 0/400 samples (0%), 0 tokens", "execute: 0/400 programs (0%), 0 tests"]
    assert len(lines) == 4
    assert re.fullmatch(r"generate: 400/400 samples \(100%\), 10000 tokens, [\d,.]+ tokens/s", lines[2])
    assert re.fullmatch(r"execute: 300/300 programs \(100%\), 900 tests, [\d,.]+ tests/s", lines[3])


def test_off_a_terminal_a_long_stage_writes_a_line_each_interval():
    out = io.StringIO()
    with ProgressDisplay(stream=out, line_interval_s=0) as display:
        display(ProgressEvent(GENERATE, expected=3))
        for _ in range(3):
            display(ProgressEvent(GENERATE, done=1, work=4))
    counts = [line.split(",")[0] for line in out.getvalue().splitlines()]
    assert counts == [f"generate: {k}/3 samples ({round(100 * k / 3)}%)" for k in range(4)]


def test_on_a_terminal_each_stage_has_a_bar_that_ends_at_the_real_counts():
    out = Terminal()
    with ProgressDisplay(stream=out) as display:
        feed_from_two_threads(display)
    text = out.getvalue()
    assert "\r" in text  # redrawn in place
    final = {stage: text.rindex(stage + ":") for stage in ("generate", "execute")}
    assert "400/400" in text[final["generate"] :].split("\r")[0]
    assert "300/300" in text[final["execute"] :].split("\r")[0]
    assert "tokens/s" in text and "tests/s" in text


def test_disabled_display_writes_nothing():
    out = Terminal()
    with ProgressDisplay(enabled=False, stream=out) as display:
        feed_from_two_threads(display, units=8)
    assert out.getvalue() == ""


def test_rates_count_the_time_a_stage_was_busy_once():
    """Two lanes generating at once count their common time once; the wait between shards counts not
    at all (execution idles while the next shard generates)."""
    stage = _Stage(GENERATE)
    stage.add(ProgressEvent(GENERATE, done=4, work=100, seconds=2.0), now=10.0)  # lane A: 8.0-10.0
    stage.add(ProgressEvent(GENERATE, done=4, work=100, seconds=2.0), now=10.5)  # lane B: 8.5-10.5
    stage.add(ProgressEvent(GENERATE, done=2, work=50, seconds=1.0), now=20.0)  # after a pause: 19-20
    assert stage.busy_s == 3.5 and stage.rate() == 250 / 3.5
    assert stage.line() == "generate: 10 samples, 250 tokens, 71.4 tokens/s"
    stage.add(ProgressEvent(GENERATE, done=-2, work=-50, seconds=-1.0), now=21.0)  # a failed shard taken back
    assert (stage.done, stage.work, stage.busy_s) == (8, 200, 2.5)
