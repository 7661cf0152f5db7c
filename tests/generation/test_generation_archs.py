"""The generation engine on every common code-model architecture, against transformers itself.

Tiny random models (tests/tiny_archs.py: Llama, Qwen 2/3 (dense, MoE, Next), Mistral, Mixtral,
Gemma 1/2/3, Phi-3, StarCoder 1/2, Granite, GPT-2, DeepSeek V2/V3, OLMo 2, Cohere 1/2, gpt-oss,
Falcon-H1, Mamba-2, RWKV) are built from their transformers configs and saved as checkpoint
folders.

- Greedy decoding must give, token for token, what `model.generate(do_sample=False)` gives for
  each prompt alone, at batch 1 and at batch 8 (left padding), and so must the sampling path (a
  prompt prefilled once for its samples, the nucleus sampler) when its nucleus is one token.
  A model whose reference has a near-tie (two logits within MIN_MARGIN) is rebuilt with the next
  seed, so a difference is a code-path difference, not float rounding.
- Where a part of the fast path does not apply, the backend says so up front (`generation_path`).
- Sampling: the same seed gives the same samples; first and second tokens follow transformers'
  temperature + top-p distribution (chi-square, per architecture family).
"""

from __future__ import annotations

import math
from collections import Counter

import pytest

from tests.tiny_archs import ARCHS, build_arch_model

NEW_TOKENS = 24
MIN_MARGIN = 5e-3  # top-2 logit gap (logit spread 8); batched and unbatched logits differ by < 2e-4

# The parts of the fast path that do not apply, by architecture (all others: "fast").
FALLBACKS = {
    "qwen2": {"KV cache"},  # a sliding-window layer
    "qwen3_next": {"KV cache", "shared prefill"},  # a linear-attention layer
    "mistral": {"KV cache"},
    "mixtral": {"KV cache"},
    "gemma2": {"attention", "KV cache"},
    "gemma3_text": {"KV cache"},
    "starcoder2": {"KV cache"},
    "cohere2": {"KV cache"},
    "gpt_oss": {"attention", "KV cache"},
    "falcon_h1": {"KV cache", "shared prefill"},  # attention and Mamba-2 in one layer
    "mamba2": {"attention", "KV cache", "shared prefill"},
    "rwkv": {"attention", "batching"},
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from more threads; on a shared CI box they only contend."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():
    from tests.tiny_model import build_tokenizer

    return build_tokenizer()


@pytest.fixture(scope="module")
def prompts():
    """Six TACO-style prompts of 17 to 121 tokens: batches of 8 pad them, and every one is longer
    than the sliding windows."""
    from tasks.problems import load_problems

    problems = load_problems().problems[:6]
    return [("\nQUESTION:\n" + p.question)[: 40 + 37 * i] for i, p in enumerate(problems)]


def greedy_reference(folder, prompts):
    """transformers' greedy continuation of each prompt alone, and the smallest top-2 logit gap
    met on the way."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)  # the engine's tokenizer: same prompt ids
    continuations, margin = [], math.inf
    for prompt in prompts:
        ids = torch.tensor([tok(prompt)["input_ids"]])
        with torch.no_grad():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=NEW_TOKENS,
                return_dict_in_generate=True,
                output_logits=True,
            )
        continuations.append(tuple(out.sequences[0, ids.shape[1] :].tolist()))
        for logits in out.logits:
            top = logits[0].topk(2).values
            margin = min(margin, float(top[0] - top[1]))
    return continuations, margin


def engine(folder):
    from tasks.generation.backends.hf import HFBackend

    return HFBackend(str(folder), device="cpu", quiet=True)


def params(batch_size, n=1, temperature=0.0, top_p=1.0, max_tokens=NEW_TOKENS, seed=0):
    from tasks.generation.backends.base import GenerationParams

    return GenerationParams(
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        batch_size=batch_size,
        stop_strings=(),
    )


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_engine_matches_transformers_greedy_token_for_token(arch, tokenizer, prompts, tmp_path):
    for seed in range(8):
        folder = build_arch_model(arch, tokenizer, tmp_path / str(seed), seed=seed)
        reference, margin = greedy_reference(folder, prompts)
        if margin >= MIN_MARGIN:
            break
    else:
        pytest.fail(f"{arch}: every seed gave a greedy near-tie (last margin {margin:.2g})")
    assert len(set(reference)) == len(prompts) and len({t for r in reference for t in r}) > 30  # not degenerate

    backend = engine(folder)
    path, reason = backend.generation_path
    parts = {note.split(":")[0] for note in reason.split("; ") if note}
    assert (path, parts) == ("fallback" if arch in FALLBACKS else "fast", FALLBACKS.get(arch, set())), reason
    for batch_size in (1, 8):
        got = [samples[0].token_ids for samples in backend.generate(prompts, params(batch_size))]
        assert got == reference, f"{arch}, greedy at batch {batch_size}"
    # Sampling with a one-token nucleus is greedy: its path (a prompt prefilled once and copied to
    # its 3 samples, two prompts per batch, the nucleus sampler) must give the same tokens.
    sampled = backend.generate(prompts, params(8, n=3, temperature=1.0, top_p=1e-9))
    assert [[s.token_ids for s in samples] for samples in sampled] == [[r] * 3 for r in reference], arch
    assert {s.batch_size for samples in sampled for s in samples} == {1 if "batching" in parts else 8}


# --- sampling distribution ---------------------------------------------------------------------------


def chi_square_p_value(statistic: float, dof: int) -> float:
    """P(X ≥ statistic) for X ~ chi-square(dof), by the Wilson–Hilferty cube-root normal
    approximation (within 2% of p at p = 0.05 and 15% at p = 0.001 for dof ≥ 3; scipy is not a
    dependency)."""
    a = 2.0 / (9.0 * dof)
    z = ((statistic / dof) ** (1.0 / 3.0) - (1.0 - a)) / math.sqrt(a)
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def chi_square(counts: Counter, probs, min_expected: float = 5.0) -> tuple[float, int]:
    """Goodness of fit of token counts to `probs` (a 1-D tensor over the vocabulary): tokens
    expected at least `min_expected` times are bins of their own, the rest share one bin.
    Returns (p-value, bins)."""
    total = sum(counts.values())
    expected = {int(t): float(p) * total for t, p in enumerate(probs) if float(p) * total >= min_expected}
    rest_expected = total - sum(expected.values())
    rest_observed = total - sum(counts[t] for t in expected)
    cells = [(counts[t], e) for t, e in expected.items()]
    if rest_expected >= min_expected:
        cells.append((rest_observed, rest_expected))
    else:  # too little mass left for a bin of its own: it joins the smallest bin
        i = min(range(len(cells)), key=lambda j: cells[j][1])
        cells[i] = (cells[i][0] + rest_observed, cells[i][1] + rest_expected)
    statistic = sum((o - e) ** 2 / e for o, e in cells)
    return chi_square_p_value(statistic, len(cells) - 1), len(cells)


def test_chi_square_p_value_matches_tabulated_quantiles():
    # 95th and 99.9th percentiles of chi-square(dof) from standard tables.
    for dof, q95, q999 in ((3, 7.815, 16.266), (10, 18.307, 29.588), (30, 43.773, 59.703)):
        assert chi_square_p_value(q95, dof) == pytest.approx(0.05, rel=0.02)
        assert chi_square_p_value(q999, dof) == pytest.approx(0.001, rel=0.15)


def transformers_distribution(model, ids, temperature, top_p):
    """Next-token probabilities under transformers' own temperature and top-p warpers."""
    import torch
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[:, -1].float()
    warped = TopPLogitsWarper(top_p)(None, TemperatureLogitsWarper(temperature)(None, logits))
    return torch.softmax(warped, dim=-1)[0]


SAMPLES, TEMPERATURE, TOP_P = 3000, 0.7, 0.9


# One architecture per family, each on another path: dense GQA (fast), MoE + sliding windows,
# q/k-norm MoE, MLA, eager soft-capped attention, and a hybrid whose samples are each prefilled.
@pytest.mark.parametrize("arch", ["llama", "mixtral", "qwen3_moe", "deepseek_v3", "gemma2", "falcon_h1"])
def test_sampling_follows_transformers_temperature_top_p(arch, tokenizer, prompts, tmp_path):
    from transformers import AutoModelForCausalLM

    folder = build_arch_model(arch, tokenizer, tmp_path, logit_std=2.0)
    backend = engine(folder)
    prompt = prompts[2]
    sampling = params(500, n=SAMPLES, temperature=TEMPERATURE, top_p=TOP_P, max_tokens=2, seed=7)
    draws = [s.token_ids for s in backend.generate([prompt], sampling)[0]]
    # Same seed, same samples (a freshly loaded model too); another seed, other samples.
    assert [s.token_ids for s in engine(folder).generate([prompt], sampling)[0]] == draws
    assert [
        s.token_ids
        for s in backend.generate(
            [prompt], params(500, n=50, temperature=TEMPERATURE, top_p=TOP_P, max_tokens=2, seed=8)
        )[0]
    ] != draws[:50]

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = backend.encode(prompt)
    first = Counter(d[0] for d in draws)
    expected_first = transformers_distribution(model, ids, TEMPERATURE, TOP_P)
    assert all(expected_first[t] > 0 for t in first), "a token outside transformers' nucleus was drawn"
    p_first, bins = chi_square(first, expected_first)
    # The token drawn after the most frequent first one: the prefilled cache one decoding step
    # further (EOS ends a sample, so it is not a condition).
    head = next(t for t, _ in first.most_common() if t != tokenizer.eos_token_id)
    second = Counter(d[1] for d in draws if d[0] == head)
    p_second, bins_second = chi_square(second, transformers_distribution(model, ids + [head], TEMPERATURE, TOP_P))
    assert bins >= 4 and bins_second >= 3, (bins, bins_second)  # enough spread for the test to mean something
    assert p_first > 1e-4 and p_second > 1e-4, (arch, p_first, p_second)
    # The test can tell a wrong distribution: the same draws against a hotter temperature fail it.
    p_wrong, _ = chi_square(first, transformers_distribution(model, ids, TEMPERATURE * 1.5, TOP_P))
    assert p_wrong < 1e-6, (arch, p_wrong)


# --- reporting ---------------------------------------------------------------------------------------


def test_shard_stats_and_run_summary_name_the_path(tiny_model_dir, tokenizer, tmp_path, capsys):
    """The path and its reason reach the shard stats (which the flow seals into the run manifest)
    and the summary of `taco-eval generate`."""
    from taco_eval.cli import main
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard
    from tasks.problems import load_problems

    problems = load_problems().problems[:2]
    sampling = SamplingConfig(n=2, max_tokens=4, batch_size=4)
    gemma2 = build_arch_model("gemma2", tokenizer, tmp_path / "gemma2")
    for folder, path, reason in ((tiny_model_dir, "fast", ""), (gemma2, "fallback", "attention: eager (Gemma2")):
        stats = generate_shard(problems, ModelConfig(str(folder), device="cpu"), sampling, 0, tmp_path / "s.parquet")
        assert stats.to_dict()["generation_path"] == path
        assert stats.to_dict()["generation_path_reason"].startswith(reason)
    assert (
        main(
            [
                "generate",
                "-m",
                str(gemma2),
                "-n",
                "2",
                "--temperature",
                "0",
                "--max-tokens",
                "4",
                "--limit",
                "2",
                "-o",
                str(tmp_path / "run"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert f"generation path: fallback ({stats.generation_path_reason})\n" in capsys.readouterr().err
