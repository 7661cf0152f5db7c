"""Reading secrets: a token file outside the sandbox, the evaluator's environment, system files."""

import os

from conftest import ENV_SECRET, stdin_problem

ATTACK = "read secrets (files, environment)"


def _code(decoys):
    return f"""
import os
found = []
for path in [{str(decoys.secret_file)!r}, "/etc/shadow", "/proc/self/environ", "/proc/1/environ",
             f"/proc/{{os.getppid()}}/environ", os.path.expanduser("~/.ssh/id_rsa")]:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        continue
    if {decoys.secret!r}.encode() in data:
        found.append("secret-file")
    if {os.environ[ENV_SECRET]!r}.encode() in data:
        found.append("env-secret:" + path)
    if path == "/etc/shadow":
        found.append("shadow")
if {ENV_SECRET!r} in os.environ:
    found.append("os.environ")
print(" ".join(found) or "nothing")
"""


def test_secrets_are_out_of_reach(attack, level, record, decoys):
    r = attack.run(level, _code(decoys), stdin_problem(["1\n"], ["nothing\n"]))
    assert r.decoys_intact
    leaked = r.stdout.split()
    assert "os.environ" not in leaked  # workers scrub their environment at every level
    if level == "process":  # documented gap: the program reads what the evaluator's user reads
        names = {"secret-file": "token file", "shadow": "/etc/shadow"}
        what = [
            names.get(x, "env secret via " + x.split(":", 1)[1] if x.startswith("env-secret:") else x) for x in leaked
        ]
        record(level, "NOT blocked: " + ", ".join(what) + " (os.environ itself is scrubbed)")
    else:
        assert r.status == "passed", r.stdout
        record(level, "blocked: nothing readable, environment scrubbed")
