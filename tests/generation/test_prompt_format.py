"""`--prompt-format auto`, the default of `run`, `generate`, `find-batch-size` and the flow: the model's
chat template when its tokenizer has one, TACO's completion prompt otherwise. Stop strings, code
extraction and the shard's record follow the format `auto` resolved to; an explicit `taco` keeps the
run id it had before `auto` existed."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from storage.tables import read_rows
from tasks import defaults
from tasks.generation.prompts import (
    STOP_STRINGS,
    PromptError,
    build_prompt,
    resolve_prompt_format,
    taco_prompt,
)
from tests.generation.test_generation import Scripted, problem


@pytest.fixture(scope="module")
def tokenizers():
    """The tiny model's tokenizer built twice: with its chat template and without one."""
    from tests.tiny_model import build_tokenizer

    with_template, without = build_tokenizer(), build_tokenizer()
    without.chat_template = None
    return with_template, without


@pytest.fixture(scope="module")
def tiny_model_without_chat_template(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("no-template") / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").unlink()
    return folder


def test_auto_takes_the_chat_template_when_the_tokenizer_has_one(tokenizers):
    with_template, without = tokenizers
    assert resolve_prompt_format("auto", with_template) == "chat"
    assert resolve_prompt_format("auto", without) == "taco"
    assert resolve_prompt_format("auto", None) == "taco"  # a backend without a tokenizer object
    assert resolve_prompt_format("taco", with_template) == "taco"  # an explicit format stays
    assert resolve_prompt_format("chat", without) == "chat"  # (and fails to build: no template)
    p = problem(question="Print the sum.")
    chat = build_prompt(p, "auto", with_template)
    assert chat == build_prompt(p, "chat", with_template) and chat.startswith("<|im_start|>user\n")
    assert build_prompt(p, "auto", without) == taco_prompt(p)
    with pytest.raises(PromptError, match="no chat template"):
        build_prompt(p, "chat", without)


def test_stop_strings_follow_the_resolved_format(tokenizers):
    from tasks.generation.generate import SamplingConfig

    with_template, without = tokenizers
    sampling = SamplingConfig(prompt_format="auto")
    assert sampling.resolved(with_template).params(0).stop_strings == ()
    assert sampling.resolved(without).params(0).stop_strings == STOP_STRINGS
    with pytest.raises(PromptError, match="resolved"):
        sampling.params(0)  # never a guess: the stop strings depend on the model


@pytest.mark.parametrize("template", [True, False], ids=["chat-template", "no-template"])
def test_a_shard_generated_with_auto_follows_the_models_tokenizer(
    template, tiny_model_dir, tiny_model_without_chat_template, tmp_path, fresh_backends
):
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard, load_backend
    from tasks.problems import load_problems

    model_cfg = ModelConfig(str(tiny_model_dir if template else tiny_model_without_chat_template), device="cpu")
    backend = load_backend(model_cfg)
    tok = backend.tokenizer
    body = tok.encode("x = 1", add_special_tokens=False)
    stop = tok.encode("\n---", add_special_tokens=False)  # one of TACO's stop strings
    tail = tok.encode(" more", add_special_tokens=False)
    out = tmp_path / "shard.parquet"
    sampling = SamplingConfig(n=1, temperature=0, max_tokens=len(body) + len(stop) + 6, prompt_format="auto")
    with Scripted(backend.model, body + stop + tail * 20, tok.eos_token_id):
        stats = generate_shard(load_problems(limit=1).problems, model_cfg, sampling, 0, out)
    (row,) = read_rows(out)
    if template:
        # Chat: "---" may be part of an answer; the turn runs on, and the whole unfenced answer is the code.
        assert stats.prompt_format == "chat"
        assert row["finish_reason"] == "length" and row["completion"].startswith("x = 1\n--- more")
        assert row["code"] == row["completion"].strip() + "\n"
    else:
        assert stats.prompt_format == "taco"
        assert row["finish_reason"] == "stop" and row["completion"] == "x = 1\n---" and row["code"] == "x = 1"


def test_explicit_taco_keeps_its_run_id_and_auto_gets_its_own():
    from storage.rundir import run_id_for
    from tasks.plan import RunConfig, run_identity
    from tasks.types import JudgeConfig

    judge = JudgeConfig()
    taco = run_identity(RunConfig(prompt_format="taco", judge=judge), "dataset-fp", "model@main")
    # Exactly the identity (so the run id) such a run had before `auto` existed.
    assert taco == {
        "code_version": defaults.CODE_VERSION,
        "dataset": "dataset-fp",
        "model": "model@main",
        "dtype": "auto",
        "backend": "hf",
        "sampling": {
            "n": defaults.RUN_N,
            "temperature": defaults.DEFAULT_TEMPERATURE,
            "top_p": defaults.DEFAULT_TOP_P,
            "max_tokens": defaults.RUN_MAX_TOKENS,
            "seed": defaults.DEFAULT_SEED,
            "prompt_format": "taco",
        },
        "judge": dataclasses.asdict(judge),
        "shard_size": defaults.RUN_SHARD_SIZE,
    }
    auto = run_identity(RunConfig(judge=judge), "dataset-fp", "model@main")
    assert auto == {**taco, "sampling": {**taco["sampling"], "prompt_format": "auto"}}
    assert run_id_for(auto) != run_id_for(taco)
