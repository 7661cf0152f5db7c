"""Prompts for TACO problems and the code extracted from completions (docs/architecture.md, "Data contracts").

Two formats, and `auto` (the default of the CLI and the flow) to pick one per model:

- `auto` is resolved when the model's tokenizer is at hand (`resolve_prompt_format`): `chat` when the
  tokenizer has a chat template (an instruction-tuned model answers TACO's completion prompt with
  prose), `taco` otherwise (also for a backend that has no tokenizer object);
- `taco` reproduces the prompt of TACO's `generation.py` exactly: the question, the
  starter code, then "Use Call-Based format" when the problem has starter code or an `fn_name`
  (else "Use Standard Input format"), then "ANSWER:". Completions are cut at TACO's stop strings.
- `chat` wraps the same text in the tokenizer's chat template (for instruction-tuned models) and
  executes the last fenced code block of the answer.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from tasks.types import Problem

PROMPT_AUTO = "auto"
PROMPT_TACO = "taco"
PROMPT_CHAT = "chat"
PROMPT_FORMATS = (PROMPT_TACO, PROMPT_CHAT)  # what a prompt is built in
PROMPT_CHOICES = (PROMPT_AUTO, *PROMPT_FORMATS)  # what a run may ask for

# TACO's EOF_STRINGS, in its order.
STOP_STRINGS: tuple[str, ...] = ("\nQUESTION", "\n---", "\nANSWER", "<|endoftext|>")

CHAT_INSTRUCTION = (
    "Solve the following programming problem in Python 3. "
    "Answer with the complete program in a single ```python fenced code block."
)
CALL_HINT = "Complete the starter code: your answer must define the function (or class method) it names."
STDIN_HINT = "Read the input from standard input and print the answer to standard output."

_STOP_PATTERN = re.compile("|".join(re.escape(s) for s in STOP_STRINGS))
# An opening fence (``` or ~~~, optional info string) at the start of a line.
_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([^\n`]*)$", re.MULTILINE)


class PromptError(ValueError):
    """A prompt cannot be built (e.g. the chat format with a tokenizer that has no chat template)."""


def uses_call_format(problem: Problem) -> bool:
    """TACO's rule: call-based when the problem has starter code or a function name."""
    return bool(problem.starter_code) or bool(problem.fn_name)


def taco_prompt(problem: Problem) -> str:
    prompt = "\nQUESTION:\n" + problem.question
    if problem.starter_code:
        prompt += problem.starter_code
    prompt += "\nUse Call-Based format" if uses_call_format(problem) else "\nUse Standard Input format"
    return prompt + "\nANSWER:\n"


def chat_messages(problem: Problem) -> list[dict[str, str]]:
    parts = [CHAT_INSTRUCTION, "", problem.question.strip()]
    if problem.starter_code:
        parts += ["", "Starter code:", "```python", problem.starter_code.rstrip(), "```"]
    parts += ["", CALL_HINT if uses_call_format(problem) else STDIN_HINT]
    return [{"role": "user", "content": "\n".join(parts)}]


def chat_prompt(problem: Problem, tokenizer: Any) -> str:
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise PromptError(
            f"--prompt-format chat: the tokenizer of {name} has no chat template; use --prompt-format taco"
        )
    return tokenizer.apply_chat_template(chat_messages(problem), tokenize=False, add_generation_prompt=True)


def resolve_prompt_format(prompt_format: str, tokenizer: Any) -> str:
    """The format a prompt is built in: `auto` becomes `chat` when `tokenizer` has a chat template,
    else `taco`; `taco` and `chat` stay as asked."""
    if prompt_format != PROMPT_AUTO:
        return prompt_format
    return PROMPT_CHAT if getattr(tokenizer, "chat_template", None) else PROMPT_TACO


def build_prompt(problem: Problem, prompt_format: str = PROMPT_TACO, tokenizer: Any = None) -> str:
    prompt_format = resolve_prompt_format(prompt_format, tokenizer)
    if prompt_format == PROMPT_TACO:
        return taco_prompt(problem)
    if prompt_format == PROMPT_CHAT:
        if tokenizer is None:
            raise PromptError("the chat prompt format needs the model's tokenizer")
        return chat_prompt(problem, tokenizer)
    raise PromptError(f"unknown prompt format '{prompt_format}' (choose from {', '.join(PROMPT_CHOICES)})")


def _require_resolved(prompt_format: str) -> None:
    if prompt_format not in PROMPT_FORMATS:
        raise PromptError(
            f"prompt format '{prompt_format}' must be resolved to one of {', '.join(PROMPT_FORMATS)} first"
        )


def stop_strings_for(prompt_format: str) -> tuple[str, ...]:
    """Strings that end a completion: TACO's for its format; none for chat (EOS ends a turn, and
    "---" or "ANSWER" may legitimately appear inside a chat answer)."""
    _require_resolved(prompt_format)
    return STOP_STRINGS if prompt_format == PROMPT_TACO else ()


def truncate_at_stop(text: str, stop_strings: Sequence[str] = STOP_STRINGS) -> str:
    """The text before the earliest occurrence of any stop string (TACO's `truncate_after_eof_strings`)."""
    if not stop_strings:
        return text
    pattern = (
        _STOP_PATTERN
        if tuple(stop_strings) == STOP_STRINGS
        else re.compile("|".join(re.escape(s) for s in stop_strings))
    )
    match = pattern.search(text)
    return text[: match.start()] if match else text


def first_stop_index(text: str, stop_strings: Sequence[str] = STOP_STRINGS) -> int | None:
    """Index where the earliest stop string starts, or None."""
    hits = [i for i in (text.find(s) for s in stop_strings if s) if i >= 0]
    return min(hits) if hits else None


def extract_last_fenced_block(text: str) -> str | None:
    """Body of the last fenced code block; an unclosed last fence (the answer ran out of tokens)
    yields everything after it. None when the text has no fence at all."""
    fences = list(_FENCE.finditer(text))
    if not fences:
        return None
    blocks: list[str] = []
    i = 0
    while i < len(fences):
        opening = fences[i]
        marker = opening.group(1)
        start = opening.end() + 1  # skip the newline that ends the fence line
        closing = None
        for j in range(i + 1, len(fences)):
            cand = fences[j]
            # A closing fence: same character, at least as long, and no info string.
            if cand.group(1)[0] == marker[0] and len(cand.group(1)) >= len(marker) and not cand.group(2).strip():
                closing = j
                break
        if closing is None:
            blocks.append(text[start:] if start <= len(text) else "")
            break
        blocks.append(text[start : fences[closing].start()])
        i = closing + 1
    return blocks[-1] if blocks else None


def extract_code(completion: str, prompt_format: str = PROMPT_TACO) -> str:
    """What gets executed: TACO format → the completion cut at the first stop string; chat
    format → the last fenced code block (or the whole answer when it has no fence)."""
    _require_resolved(prompt_format)
    if prompt_format == PROMPT_CHAT:
        block = extract_last_fenced_block(completion)
        return completion.strip() + "\n" if block is None else block
    return truncate_at_stop(completion, STOP_STRINGS)
