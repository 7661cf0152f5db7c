"""The CLI's progress display (taco_eval/progress.py): bars on a terminal, plain lines elsewhere,
final counts equal to what the stages reported, from several threads at once."""

from __future__ import annotations

import io
import re
import threading

from taco_eval.progress import ProgressDisplay
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
            display(ProgressEvent(GENERATE, done=2, work=50))

    def execute():
        display(ProgressEvent(EXECUTE, expected=-units // 4))
        for _ in range(units * 3 // 4):
            display(ProgressEvent(EXECUTE, done=1, work=3))

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
    assert re.fullmatch(r"generate: 400/400 samples \(100%\), 10000 tokens(, [\d,.]+ tokens/s)?", lines[2])
    assert lines[3].startswith("execute: 300/300 programs (100%), 900 tests")


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
