"""The interface every generation backend implements.

A backend owns a loaded model and tokenizer and turns a list of prompt strings into `n` samples
each. It decides how to batch (the HF backend packs prompts into `generate` calls; vLLM schedules
by itself) and reports, per sample, what the Parquet row needs.
"""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

FINISH_STOP = "stop"  # a stop string or the end-of-sequence token ended the sample
FINISH_LENGTH = "length"  # --max-tokens reached

# Called after each batch with (samples finished, tokens generated) in that batch.
ProgressFn = Callable[[int, int], None]


def derive_seed(base: int, *parts: int) -> int:
    """A seed in [0, 2**31) that depends deterministically on `base` and `parts`."""
    text = ":".join(str(int(x)) for x in (base, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


class BackendError(Exception):
    """A backend cannot run as asked: not installed, bad device, model not loadable."""


class BackendUnavailable(BackendError):
    """The backend's package is not installed."""


@dataclass(frozen=True)
class Completion:
    text: str  # decoded completion, stop string included when one ended it
    num_tokens: int  # generated tokens, the end-of-sequence token included when generated
    finish_reason: str  # FINISH_STOP | FINISH_LENGTH
    seed: int  # the seed the sampling RNG had when this sample's batch started
    batch_size: int  # the batch size in force when it was generated (it changes the samples)
    # The generated token ids (EOS included when generated): what decoding chose, before the text
    # is decoded, so engines can be compared token for token.
    token_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class GenerationParams:
    """Everything that shapes the samples of one `Backend.generate` call."""

    n: int
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    batch_size: int | str  # int, or "auto"
    stop_strings: tuple[str, ...]

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class Backend(abc.ABC):
    """Subclasses set `_tokenizer` and `_device` when they load, `_last_size` after each call."""

    name: str = "base"
    _tokenizer: Any = None
    _device: str = "cpu"
    _last_size: int | None = None

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (chat templates, token counts)."""
        return self._tokenizer

    @property
    def device(self) -> str:
        return self._device

    @abc.abstractmethod
    def generate(
        self, prompts: Sequence[str], params: GenerationParams, progress: ProgressFn | None = None
    ) -> list[list[Completion]]:
        """`params.n` samples for each prompt, in the prompts' order; sample i of a prompt is its
        i-th entry. Deterministic for the same prompts, params and batch size."""

    @property
    def generation_path(self) -> tuple[str, str]:
        """The code path that generates ("fast", "fallback", or the backend's own name) and, when
        parts of the fast path do not apply to the model, why."""
        return self.name, ""

    @property
    def batch_size_in_use(self) -> int | None:
        """The batch size the last call ended with (after any out-of-memory halving)."""
        return self._last_size

    def reset_peak_memory(self) -> None:
        """Start a new peak-memory window (no-op without a GPU)."""

    def peak_memory_bytes(self) -> int | None:
        """Peak accelerator memory since the last reset, None without one."""
        return None
