"""How to run untrusted code: worker pool, fork-per-test runner, isolation. Knows nothing of
datasets or verdict rules (see `tasks.judging.rules`)."""
