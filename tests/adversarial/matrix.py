"""Print the attack × level table written by the adversarial tests as Markdown.

TACO_EVAL_ATTACK_MATRIX=matrix.json python -m pytest -q tests/adversarial
python tests/adversarial/matrix.py matrix.json
"""

from __future__ import annotations

import json
import sys

LEVELS = ("process", "seccomp", "bwrap")


def render(data: dict) -> str:
    cells: dict[str, dict[str, str]] = {}
    for row in data["rows"]:
        cells.setdefault(row["attack"], {})[row["level"]] = row["result"]
    lines = ["| attack | " + " | ".join(f"`{lv}`" for lv in LEVELS) + " |", "|---|" + "---|" * len(LEVELS)]
    for attack in cells:
        row = [cells[attack].get(lv, "unavailable here" if lv in data.get("unavailable", {}) else "—") for lv in LEVELS]
        lines.append(f"| {attack} | " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(json.loads(open(sys.argv[1]).read())))
