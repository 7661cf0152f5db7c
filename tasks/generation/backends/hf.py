"""Hugging Face transformers backend: batched `model.generate` with left padding.

How a list of prompts becomes `generate` calls:

- prompts are sorted by token length, longest first (less padding per batch; an out-of-memory
  error, if one is coming, comes on the first batch);
- a batch holds at most `batch_size` sequences: whole prompts with all their n samples when
  n ≤ batch size, else one prompt's samples in chunks of batch size. The samples of a prompt are
  what `num_return_sequences` gives, except that the prompt is prefilled once and its KV cache
  copied to its samples (`num_return_sequences` copies the prompt and prefills every copy);
- prompts are left-padded by hand (tokenised once each) with an attention mask, so a prompt's
  greedy continuation does not depend on its batch neighbours;
- one `StopStringCriteria` per stop-string set is built once and reused (building it costs ~1 s
  with a 49k vocabulary, which `generate(stop_strings=…)` pays on every call); a small recorder
  notes the step at which each row ended, which gives `num_tokens` and `finish_reason`;
- greedy decoding (temperature 0) generates each prompt once and repeats it n times: greedy
  samples are identical;
- sampling (temperature, top-p) is done by `NucleusSampler` in a logits processor, which avoids
  sorting the vocabulary and drawing one random number per vocabulary entry at every step;
- the KV cache grows in place (`hf_cache.GrowingLayer`) instead of by concatenation;
- which of these parts apply is decided per model when it loads (`fast_path`: sdpa attention,
  the growing cache, the shared prefill, batching); what does not apply is left to transformers,
  which gives the same tokens more slowly, and `generation_path` says which parts and why;
- `batch_size="auto"` starts from an estimate of what fits (KV cache of the longest sequence
  against free memory, capped), halves on out-of-memory (empties the CUDA cache and retries the
  same batch), warns when it reaches 1, and keeps the size that worked for later calls.
"""

from __future__ import annotations

import gc
import inspect
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

from tasks.generation.backends import DTYPES
from tasks.generation.backends.base import (
    FINISH_LENGTH,
    FINISH_STOP,
    Backend,
    BackendError,
    GenerationParams,
    ProgressFn,
    Completion,
    derive_seed,
)

AUTO_START_CUDA = 256  # "start high": sequences per generate call before any OOM
AUTO_START_CPU = 64  # CPU throughput flattens out well before this (README, "Generation benchmark")
CPU_MEMORY_FRACTION = 0.5  # auto / probing never plans to use more of the free RAM than this
CUDA_MEMORY_FRACTION = 0.85


def resolve_device(device: str) -> str:
    import torch

    device = (device or "auto").strip().lower()
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise BackendError(f"device '{device}' asked for, but torch sees no CUDA GPU (use --device cpu)")
        index = 0 if device == "cuda" else device.split(":", 1)[1]
        try:
            index = int(index)
        except ValueError:
            raise BackendError(f"bad device '{device}': expected cuda:N") from None
        if not 0 <= index < torch.cuda.device_count():
            raise BackendError(f"device '{device}' does not exist: torch sees {torch.cuda.device_count()} GPU(s)")
        return f"cuda:{index}"
    raise BackendError(f"unknown device '{device}' (auto, cpu, cuda or cuda:N)")


def resolve_dtype(dtype: str, device: str):
    """`auto` → float32 on CPU (bf16 matmuls were slower there when measured), bfloat16 on a GPU that
    supports it, else float16."""
    import torch

    if dtype not in DTYPES:
        raise BackendError(f"unknown dtype '{dtype}' (choose from {', '.join(DTYPES)})")
    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, dtype)


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or isinstance(exc, MemoryError)
    )


def available_memory_bytes(device: str) -> int | None:
    """Free memory the model may still use on `device` (None when unknown)."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@dataclass
class ProbeResult:
    batch_size: int
    ok: bool
    tokens_per_s: float = 0.0
    seconds: float = 0.0
    peak_memory_bytes: int | None = None
    note: str = ""


class _FinishRecorder:
    """Stopping criterion that notes, per row, the sequence length at which the row ended (stop
    string or end-of-sequence token). It stops rows only for stop strings; transformers' own
    EOS criterion stops rows at EOS."""

    def __init__(self, stop_criteria, eos_ids, rows: int):
        import torch

        self.stop_criteria = stop_criteria
        self.eos = torch.tensor(sorted(eos_ids), dtype=torch.long) if eos_ids else None
        self.ended_at = torch.full((rows,), -1, dtype=torch.long)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        rows = input_ids.shape[0]
        if self.stop_criteria is not None:
            done = self.stop_criteria(input_ids, scores, **kwargs)
        else:
            done = torch.zeros(rows, dtype=torch.bool, device=input_ids.device)
        ended = done.clone()
        if self.eos is not None:
            if self.eos.device != input_ids.device:
                self.eos = self.eos.to(input_ids.device)
            ended |= torch.isin(input_ids[:, -1], self.eos)
        ended = ended.cpu()
        newly = ended & (self.ended_at < 0)
        self.ended_at[newly] = input_ids.shape[1]
        return done


class NucleusSampler:
    """Temperature + nucleus (top-p) sampling done inside a logits processor.

    transformers' path costs, per step at batch 40 with a 49k vocabulary on one CPU core, ~160 ms
    to sort the vocabulary for top-p and ~50 ms for `torch.multinomial` (one random number per
    vocabulary entry), several times the model's own step. This finds the nucleus among the `k`
    largest logits (k grows ×4 until the top k hold at least `top_p` of the mass in every row),
    draws the token among those few, and returns scores where only that token is finite, so
    `generate` runs in its greedy mode (an argmax) and picks it. Same distribution as
    temperature → top-p → softmax sampling, at ~10 ms per step.
    """

    def __init__(self, temperature: float, top_p: float, k: int = 64):
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.k = k

    def nucleus(self, scores):
        """(values, token ids, keep mask) of the top tokens, nucleus marked by `keep`; the values
        are temperature-scaled logits."""

        scores = scores.float()
        if self.temperature != 1.0:
            scores = scores / self.temperature
        vocab = scores.shape[-1]
        # log of the softmax denominator; differences are clamped at -80 so exp() never produces
        # denormals (slow on x86: 50 ms instead of 3 at batch 40); the clamp changes the total by
        # less than vocab × e^-80.
        peak = scores.amax(dim=-1, keepdim=True)
        log_total = peak + (scores - peak).clamp_(min=-80.0).exp_().sum(dim=-1, keepdim=True).log_()
        k = vocab if self.top_p >= 1.0 else min(self.k, vocab)
        while True:
            top_vals, top_idx = scores.topk(k, dim=-1)  # descending
            probs = (top_vals - log_total).exp()
            cum = probs.cumsum(dim=-1)
            if k == vocab or bool((cum[:, -1] >= self.top_p).all()):
                break
            k = min(vocab, k * 4)
        # transformers' rule: keep a token when the tokens ranked above it hold less than top_p
        # of the mass; the most likely token always stays.
        keep = (cum - probs) < self.top_p
        keep[:, 0] = True
        return top_vals, top_idx, keep

    def __call__(self, input_ids, scores):
        import torch

        top_vals, top_idx, keep = self.nucleus(scores)
        weights = torch.where(keep, top_vals - top_vals[:, :1], torch.full_like(top_vals, -float("inf"))).exp_()
        choice = torch.multinomial(weights, num_samples=1)
        token = top_idx.gather(1, choice)
        out = torch.full_like(scores, -float("inf"))
        return out.scatter_(1, token, 0.0)


def _logits_processor(processor):
    from transformers import LogitsProcessor

    class _Processor(LogitsProcessor):
        def __call__(self, input_ids, scores):
            return processor(input_ids, scores)

    return _Processor()


def _stopping_criterion(recorder: _FinishRecorder):
    """Wrap the recorder in a `StoppingCriteria` subclass (imported lazily)."""
    from transformers import StoppingCriteria

    class _Criterion(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return recorder(input_ids, scores, **kwargs)

    return _Criterion()


def _ungroup_mla_heads(config) -> None:
    """Multi-head latent attention (DeepSeek-V2/V3 and kin) caches one latent per token and expands
    it into keys and values for every query head, so they are never shared between heads. Its
    attention module still takes `num_attention_heads // num_key_value_heads` as a grouped-query
    factor, which transformers' sdpa path applies once an attention mask is present (a padded
    batch): a config with fewer key-value than query heads then fails ("size of tensor a (4) must
    match ... (8)"), while unpadded generation ignores the factor. One key-value head per query
    head is what the model computes unpadded, so batches now compute the same thing."""
    text = config.get_text_config(decoder=True)
    if getattr(text, "kv_lora_rank", None) and getattr(text, "num_key_value_heads", None) != text.num_attention_heads:
        text.num_key_value_heads = text.num_attention_heads


def _why_no_sdpa(config) -> str:
    """Why the model class for `config` cannot run sdpa attention ("" when it can), told before
    loading: transformers refuses `attn_implementation="sdpa"` for such classes (Gemma2: attention
    logit soft-capping; gpt-oss: attention sinks; Mamba: no attention at all)."""
    from transformers import AutoModelForCausalLM

    mapping = AutoModelForCausalLM._model_mapping
    if type(config) not in mapping:
        return ""  # from_pretrained reports the unsupported model itself
    classes = mapping[type(config)]
    for cls in classes if isinstance(classes, (list, tuple)) else [classes]:
        if not getattr(cls, "_supports_sdpa", False):
            return f"{cls.__name__} has no sdpa attention in transformers"
    return ""


@dataclass(frozen=True)
class FastPath:
    """The parts of the engine's fast path that apply to a loaded model (see `fast_path`)."""

    grow_cache: bool  # the KV cache grows in place (hf_cache.GrowingLayer)
    share_prefill: bool  # a prompt is prefilled once and its cache copied to its samples
    notes: tuple[str, ...]  # why a part does not apply, and what runs instead
    batch: bool = True  # several sequences share a generate call


def fast_path(model) -> FastPath:
    """Which parts of the engine's KV-cache fast path apply to `model`, decided from the layers of
    the cache transformers would build for it. A part that does not apply is left to transformers
    (its own cache; each sample prefilled, as `num_return_sequences` does), which gives the same
    tokens more slowly."""
    from transformers.cache_utils import DynamicLayer

    from tasks.generation.backends.hf_cache import REPEATABLE_LAYERS, cache_layer_kinds

    name = type(model).__name__
    if not model._supports_default_dynamic_cache():
        # Such models (RWKV among them) carry a recurrent state of their own, which batching can
        # change: transformers' RWKV decodes a batch of three identical rows unlike one row.
        note = (
            f"batching: off, one sequence per generate call ({name} keeps its own recurrent state "
            "outside transformers' Cache, and batching changes it)"
        )
        return FastPath(False, False, (note,), batch=False)
    kinds = cache_layer_kinds(model.config.get_text_config(decoder=True))
    others = sorted({k.__name__ for k in kinds if k is not DynamicLayer})
    unrepeatable = sorted({k.__name__ for k in kinds if k not in REPEATABLE_LAYERS})
    cache_note = share_note = ""
    if others:
        cache_note = (
            f"KV cache: transformers' ({', '.join(others)} layers: the in-place cache holds full-attention layers only)"
        )
    if unrepeatable:
        share_note = (
            f"shared prefill: off, each sample is prefilled ({', '.join(unrepeatable)} layers hold "
            "state transformers cannot copy to a prompt's samples)"
        )
    elif "position_ids" not in inspect.signature(model.forward).parameters:
        share_note = (
            f"shared prefill: off, each sample is prefilled ({name} takes no position ids, "
            "which a left-padded prefix prefill needs)"
        )
    return FastPath(not cache_note, not share_note, tuple(n for n in (cache_note, share_note) if n))


class HFBackend(Backend):
    name = "hf"

    def __init__(
        self, model: str, revision: str | None = None, dtype: str = "auto", device: str = "auto", *, quiet: bool = False
    ):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        self.model_name = model
        self._device = resolve_device(device)
        self.torch_dtype = resolve_dtype(dtype, self._device)
        self.quiet = quiet
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # "Loading weights" bars would bury the CLI's own output
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
            config = AutoConfig.from_pretrained(model, revision=revision)
            _ungroup_mla_heads(config)
            no_sdpa = _why_no_sdpa(config)
            # sdpa is asked for by name: a checkpoint's config may name a slower implementation.
            self.model = AutoModelForCausalLM.from_pretrained(
                model,
                revision=revision,
                config=config,
                dtype=self.torch_dtype,
                attn_implementation=None if no_sdpa else "sdpa",
            )
        except OSError as exc:
            raise BackendError(f"cannot load model '{model}': {str(exc).splitlines()[0]}") from exc
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        self.model.to(self._device)
        self.model.eval()
        self._tokenizer.padding_side = "left"
        gen_cfg = self.model.generation_config
        eos = set()
        for value in (gen_cfg.eos_token_id, self._tokenizer.eos_token_id):
            if value is None:
                continue
            eos.update(value if isinstance(value, (list, tuple)) else [value])
        self.eos_ids = sorted(int(e) for e in eos)
        pad = self._tokenizer.pad_token_id
        if pad is None:
            pad = gen_cfg.pad_token_id if gen_cfg.pad_token_id is not None else (self.eos_ids[0] if self.eos_ids else 0)
        self.pad_id = int(pad)
        self.bos_id = gen_cfg.bos_token_id
        self._stop_cache: dict[tuple[str, ...], Any] = {}
        self._auto_size: int | None = None
        self._last_size: int | None = None
        self._lock = threading.Lock()  # one generate at a time per loaded model
        forward_args = inspect.signature(self.model.forward).parameters
        # transformers 5.24 renamed `past_key_values` to `cache` (the old name still works, with a warning).
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        self._logits_to_keep = "logits_to_keep" in forward_args
        fast = fast_path(self.model)
        # Prefill each prompt once and share its KV cache between its samples.
        self.share_prompt_cache = fast.share_prefill
        # Grow the KV cache in place rather than by concatenation (tasks/generation/backends/hf_cache.py).
        self.grow_cache_in_place = fast.grow_cache
        self.batch_sequences = fast.batch
        self.path_notes = (
            [f"attention: {self.model.config._attn_implementation} ({no_sdpa})"] if no_sdpa else []
        ) + list(fast.notes)

    # --- Backend interface -------------------------------------------------------------------

    def reset_peak_memory(self) -> None:
        if self._device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(torch.device(self._device))

    def peak_memory_bytes(self) -> int | None:
        if self._device.startswith("cuda"):
            import torch

            return int(torch.cuda.max_memory_allocated(torch.device(self._device)))
        return None

    def generate(
        self, prompts: Sequence[str], params: GenerationParams, progress: ProgressFn | None = None
    ) -> list[list[Completion]]:
        with self._lock:
            return self._generate(list(prompts), params, progress)

    @property
    def generation_path(self) -> tuple[str, str]:
        return ("fallback" if self.path_notes else "fast"), "; ".join(self.path_notes)

    # --- helpers -----------------------------------------------------------------------------

    def encode(self, prompt: str) -> list[int]:
        """Token ids of a prompt. A prompt that already starts with the BOS token (a rendered chat
        template) gets no second one."""
        bos = self._tokenizer.bos_token
        add_special = not (bos and prompt.startswith(bos))
        return list(self._tokenizer(prompt, add_special_tokens=add_special)["input_ids"])

    def stop_criteria(self, stop_strings: tuple[str, ...]):
        """The `StopStringCriteria` for these strings, built once per backend (i.e. per tokenizer)."""
        if not stop_strings:
            return None
        if stop_strings not in self._stop_cache:
            from transformers import StopStringCriteria

            try:
                crit = StopStringCriteria(tokenizer=self._tokenizer, stop_strings=list(stop_strings))
            except ValueError:
                # A stop string no token can produce (odd vocabularies): keep the ones that work.
                usable = []
                for s in stop_strings:
                    try:
                        StopStringCriteria(tokenizer=self._tokenizer, stop_strings=[s])
                        usable.append(s)
                    except ValueError:
                        self._warn(f"stop string {s!r} cannot be matched with this tokenizer; ignored")
                crit = StopStringCriteria(tokenizer=self._tokenizer, stop_strings=usable) if usable else None
            self._stop_cache[stop_strings] = crit
        return self._stop_cache[stop_strings]

    def sequence_bytes(self, total_len: int) -> int:
        """Rough memory one sequence of `total_len` tokens needs during generation: its KV cache,
        the prefill activations of its prompt and its logits."""
        cfg = (
            self.model.config.get_text_config() if hasattr(self.model.config, "get_text_config") else self.model.config
        )
        layers = int(getattr(cfg, "num_hidden_layers", 12) or 12)
        heads = int(getattr(cfg, "num_attention_heads", 12) or 12)
        hidden = int(getattr(cfg, "hidden_size", 768) or 768)
        kv_heads = int(getattr(cfg, "num_key_value_heads", None) or heads)
        head_dim = int(getattr(cfg, "head_dim", None) or hidden // heads)
        inter = int(getattr(cfg, "intermediate_size", None) or 4 * hidden)
        vocab = int(getattr(cfg, "vocab_size", 32000) or 32000)
        elem = self.torch_dtype.itemsize if hasattr(self.torch_dtype, "itemsize") else 4
        kv = 2 * layers * kv_heads * head_dim * elem * total_len
        activations = total_len * (4 * hidden + 2 * inter) * elem
        logits = 2 * vocab * 4
        return int(1.2 * (kv + activations + logits))

    def max_fitting_batch(self, total_len: int) -> int | None:
        free = available_memory_bytes(self._device)
        if free is None:
            return None
        frac = CUDA_MEMORY_FRACTION if self._device.startswith("cuda") else CPU_MEMORY_FRACTION
        return max(1, int(free * frac // max(1, self.sequence_bytes(total_len))))

    def _warn(self, message: str) -> None:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        if not self.quiet:
            print(f"taco-eval: warning: {message}", file=sys.stderr, flush=True)

    def _seed(self, seed: int) -> None:
        import torch

        if self._device.startswith("cuda"):
            # Seed only this lane's GPU: torch.manual_seed would reseed every device, racing with
            # the lanes of other GPUs.
            with torch.cuda.device(torch.device(self._device)):
                torch.cuda.manual_seed(seed)
        else:
            torch.manual_seed(seed)

    def _start_size(self, params: GenerationParams, longest_prompt: int) -> int:
        if params.batch_size != "auto":
            return int(params.batch_size)
        if self._auto_size is None:
            cap = AUTO_START_CUDA if self._device.startswith("cuda") else AUTO_START_CPU
            fits = self.max_fitting_batch(longest_prompt + params.max_tokens)
            self._auto_size = max(1, min(cap, fits) if fits is not None else cap)
        return self._auto_size

    def _free_memory(self) -> None:
        gc.collect()
        if self._device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def _generate(self, prompts: list[str], params: GenerationParams, progress: ProgressFn | None):
        if not prompts:
            return []
        encoded = [self.encode(p) for p in prompts]
        per_prompt = 1 if params.greedy else params.n
        order = sorted(range(len(prompts)), key=lambda i: (-len(encoded[i]), i))
        results: list[list[Completion | None]] = [[None] * per_prompt for _ in prompts]
        size = self._start_size(params, len(encoded[order[0]])) if self.batch_sequences else 1
        pos, offset = 0, 0  # next prompt (in `order`) and next sample of that prompt
        while pos < len(order):
            if offset > 0 or per_prompt > size:
                group, count = [order[pos]], min(size, per_prompt - offset)
            else:
                group, count = order[pos : pos + max(1, size // per_prompt)], per_prompt
            seed = derive_seed(params.seed, pos * per_prompt + offset)
            try:
                samples = self._run_batch([encoded[i] for i in group], count, params, seed, size)
            except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are handled
                if not is_out_of_memory(exc):
                    raise
                del exc
                self._free_memory()
                if params.batch_size != "auto":
                    raise BackendError(f"out of memory at batch size {size}; use a smaller -b or -b auto") from None
                if size == 1:
                    raise BackendError(
                        "out of memory even at batch size 1: use a smaller model, "
                        "--max-tokens or a lower-precision --torch-dtype"
                    ) from None
                size = max(1, size // 2)
                self._auto_size = size
                if size == 1:
                    self._warn("out of memory: falling back to single-sample generation (batch size 1)")
                else:
                    self._warn(f"out of memory: halving the batch size to {size} and retrying")
                continue
            for g, prompt_index in enumerate(group):
                results[prompt_index][offset : offset + count] = samples[g * count : (g + 1) * count]
            if progress is not None:
                factor = params.n if params.greedy else 1
                progress(len(samples) * factor, sum(s.num_tokens for s in samples))
            if len(group) == 1 and (offset > 0 or count < per_prompt):
                offset += count
                if offset >= per_prompt:
                    pos, offset = pos + 1, 0
            else:
                pos += len(group)
        self._last_size = size
        if params.greedy:
            return [[r[0]] * params.n for r in results]  # type: ignore[list-item]
        return [list(r) for r in results]  # type: ignore[arg-type]

    def _run_batch(
        self, prompts_ids: list[list[int]], count: int, params: GenerationParams, seed: int, size: int
    ) -> list[Completion]:
        """One `generate` call: `count` samples of each prompt, rows prompt-major."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        width = max(len(ids) for ids in prompts_ids)
        input_ids = torch.full((len(prompts_ids), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts_ids), width), dtype=torch.long)
        for row, ids in enumerate(prompts_ids):
            if ids:
                input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                attention[row, width - len(ids) :] = 1
        rows = len(prompts_ids) * count
        recorder = _FinishRecorder(self.stop_criteria(params.stop_strings), self.eos_ids, rows)
        # Sampling (temperature, top-p; no top-k, as in vLLM's defaults) is done by NucleusSampler,
        # which leaves one finite score per row for generate's greedy mode to pick.
        processors = [] if params.greedy else [_logits_processor(NucleusSampler(params.temperature, params.top_p))]
        gen_config = GenerationConfig(
            max_new_tokens=int(params.max_tokens),
            do_sample=False,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids or None,
            bos_token_id=self.bos_id,
        )
        input_ids, attention = input_ids.to(self._device), attention.to(self._device)
        extra: dict[str, Any] = {}
        reserve = int(params.max_tokens) + 2
        if count > 1:
            # The `count` samples of each prompt (what `num_return_sequences` does, but with the
            # prompt's KV cache computed once and copied, rather than the prompt copied `count`
            # times and prefilled `count` times).
            if self.share_prompt_cache and min(len(ids) for ids in prompts_ids) >= 2:
                extra[self._cache_arg] = self._prefill_once(input_ids, attention, count, reserve)
            input_ids = input_ids.repeat_interleave(count, dim=0)
            attention = attention.repeat_interleave(count, dim=0)
        if not extra:
            extra = self._growing_cache_arg(reserve)
        self._seed(seed)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                generation_config=gen_config,
                stopping_criteria=StoppingCriteriaList([_stopping_criterion(recorder)]),
                logits_processor=LogitsProcessorList(processors),
                **extra,
            )
        generated = output[:, width:].cpu()
        del output
        samples = []
        for row in range(rows):
            ended = int(recorder.ended_at[row])
            if ended >= 0:
                n_tokens, reason = ended - width, FINISH_STOP
            else:
                n_tokens, reason = min(int(params.max_tokens), generated.shape[1]), FINISH_LENGTH
            ids = generated[row, :n_tokens].tolist()
            text = self._tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            samples.append(
                Completion(
                    text=text,
                    num_tokens=n_tokens,
                    finish_reason=reason,
                    seed=seed,
                    batch_size=size,
                    token_ids=tuple(ids),
                )
            )
        return samples

    def _new_cache(self, reserve: int):
        """An empty KV cache: the in-place growing one where it applies, else transformers' default."""
        from transformers import DynamicCache

        from tasks.generation.backends.hf_cache import growing_cache

        config = self.model.config.get_text_config(decoder=True)
        return growing_cache(config, reserve) if self.grow_cache_in_place else DynamicCache(config=config)

    def _growing_cache_arg(self, reserve: int) -> dict[str, Any]:
        """`generate`'s cache argument: the growing cache, or nothing (transformers makes its own)."""
        return {self._cache_arg: self._new_cache(reserve)} if self.grow_cache_in_place else {}

    def _prefill_once(self, input_ids, attention, count: int, reserve: int):
        """KV cache of every prompt but its last token, each row repeated `count` times (`fast_path`
        decided up front that this model's cache can be repeated)."""
        import torch

        positions = (attention.long().cumsum(-1) - 1).clamp(min=0)
        cache = self._new_cache(reserve)
        kwargs: dict[str, Any] = {self._cache_arg: cache}
        if self._logits_to_keep:
            kwargs["logits_to_keep"] = 1
        with torch.inference_mode():
            self.model(
                input_ids=input_ids[:, :-1],
                attention_mask=attention[:, :-1],
                position_ids=positions[:, :-1],
                use_cache=True,
                **kwargs,
            )
        cache.batch_repeat_interleave(count)
        return cache

    # --- find-batch-size ---------------------------------------------------------------------

    def probe(
        self,
        prompt: str,
        batch_size: int,
        max_tokens: int,
        seed: int = 0,
        temperature: float = 0.2,
        top_p: float = 0.95,
    ) -> ProbeResult:
        """Generate exactly `max_tokens` tokens for `batch_size` copies of `prompt` (sampling as
        `generate` does, no stop strings) and time it. Out-of-memory is caught and reported."""
        import torch
        from transformers import GenerationConfig

        ids = self.encode(prompt)
        input_ids = torch.tensor([ids] * batch_size, dtype=torch.long, device=self._device)
        from transformers import LogitsProcessorList

        gen_config = GenerationConfig(
            max_new_tokens=max_tokens,
            min_new_tokens=max_tokens,
            do_sample=False,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids or None,
        )
        sampler = LogitsProcessorList([_logits_processor(NucleusSampler(temperature, top_p))])
        self.reset_peak_memory()
        self._seed(seed)
        start = time.perf_counter()
        try:
            with self._lock, torch.inference_mode():
                out = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    generation_config=gen_config,
                    logits_processor=sampler,
                    **self._growing_cache_arg(max_tokens + 2),
                )
                if self._device.startswith("cuda"):
                    torch.cuda.synchronize(torch.device(self._device))
        except Exception as exc:  # noqa: BLE001
            if not is_out_of_memory(exc):
                raise
            del exc
            self._free_memory()
            return ProbeResult(batch_size, False, note="out of memory")
        seconds = time.perf_counter() - start
        tokens = (out.shape[1] - len(ids)) * batch_size
        del out
        return ProbeResult(
            batch_size, True, tokens / seconds if seconds > 0 else 0.0, seconds, self.peak_memory_bytes()
        )
