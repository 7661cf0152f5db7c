"""Optional vLLM backend (`pip install taco-eval[vllm]`, then `--backend vllm`).

vLLM schedules and batches by itself (continuous batching, paged KV cache, prefix caching shares
the prompt between a prompt's n samples), so the whole shard is submitted at once; the options
map onto `SamplingParams(n=…, temperature=…, top_p=…, max_tokens=…, stop=…, seed=…)`. The stop
string is kept in the completion, as with the HF backend, and `code` is cut at it the same way.
"""

from __future__ import annotations

from typing import Any, Sequence

from tasks.generation.backends.base import (
    FINISH_LENGTH,
    FINISH_STOP,
    Backend,
    BackendError,
    BackendUnavailable,
    GenerationParams,
    ProgressFn,
    Completion,
)

INSTALL_HINT = "the vLLM backend needs the vllm package: pip install 'taco-eval[vllm]' (Linux with a CUDA GPU)"


def import_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable(INSTALL_HINT) from exc
    return vllm


def _vllm_dtype(dtype: str) -> str:
    return {"auto": "auto", "float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}.get(dtype, "auto")


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(
        self, model: str, revision: str | None = None, dtype: str = "auto", device: str = "auto", *, quiet: bool = False
    ):
        vllm = import_vllm()
        self._vllm = vllm
        self._device = device
        kwargs: dict[str, Any] = {"model": model, "dtype": _vllm_dtype(dtype)}
        if revision:
            kwargs["revision"] = revision
        if device not in ("auto", "cuda") and device.startswith("cuda:"):
            # vLLM places a model on the current CUDA device: one lane per GPU is run by pinning
            # each lane's device (CUDA_VISIBLE_DEVICES for separate processes is the robust way).
            import torch

            torch.cuda.set_device(int(device.split(":", 1)[1]))
        elif device == "cpu":
            kwargs["device"] = "cpu"
        try:
            self.llm = vllm.LLM(**kwargs)
        except Exception as exc:  # noqa: BLE001 - vLLM raises many kinds; the message is what matters
            raise BackendError(
                f"vLLM could not load '{model}': {str(exc).splitlines()[0] if str(exc) else exc!r}"
            ) from exc
        self._tokenizer = self.llm.get_tokenizer()
        self._last_size: int | None = None

    def sampling_params(self, params: GenerationParams):
        """The `SamplingParams` equivalent of our options; temperature 0 is greedy in vLLM too."""
        kwargs: dict[str, Any] = dict(
            n=params.n,
            temperature=float(params.temperature),
            top_p=1.0 if params.greedy else float(params.top_p),
            max_tokens=int(params.max_tokens),
            seed=int(params.seed),
        )
        if params.stop_strings:
            kwargs["stop"] = list(params.stop_strings)
            kwargs["include_stop_str_in_output"] = True
        return self._vllm.SamplingParams(**kwargs)

    def generate(
        self, prompts: Sequence[str], params: GenerationParams, progress: ProgressFn | None = None
    ) -> list[list[Completion]]:
        prompts = list(prompts)
        if not prompts:
            return []
        outputs = self.llm.generate(prompts, self.sampling_params(params), use_tqdm=False)
        # vLLM batches the whole submission; record that as the batch size.
        size = len(prompts) * params.n
        self._last_size = size
        results: list[list[Completion]] = []
        for request in outputs:
            samples = []
            for completion in sorted(request.outputs, key=lambda c: c.index):
                reason = FINISH_LENGTH if completion.finish_reason == "length" else FINISH_STOP
                samples.append(
                    Completion(
                        text=completion.text,
                        num_tokens=len(completion.token_ids),
                        finish_reason=reason,
                        seed=int(params.seed),
                        batch_size=size,
                        token_ids=tuple(completion.token_ids),
                    )
                )
            results.append(samples)
            if progress is not None:
                progress(len(samples), sum(s.num_tokens for s in samples))
        return results
