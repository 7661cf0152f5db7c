"""A tiny causal LM built locally for tests: no hub, no download, < 1 s, deterministic.

- tokenizer: byte-level BPE trained with `tokenizers` on the bundled sample problems and a few
  lines of Python (so TACO prompts and code tokenise to a sensible number of tokens), with the
  special tokens `<|endoftext|>` (BOS/EOS), `<pad>`, `<|im_start|>`, `<|im_end|>` and a chat
  template;
- model: a 2-layer Llama with random weights (fixed seed).

Both are saved with `save_pretrained` so tests load them back through `from_pretrained` exactly
as a real model folder. Run as a script to build one: `python tests/tiny_model.py OUT_DIR`.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path

EOS = "<|endoftext|>"
PAD = "<pad>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [EOS, PAD, IM_START, IM_END]
VOCAB_SIZE = 600
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_PYTHON = """\
import sys
def solve():
    n, k = map(int, input().split())
    a = list(map(int, input().split()))
    total = sum(a)
    print(total // k, total % k)
class Solution:
    def twoSum(self, nums: List[int], target: int) -> List[int]:
        seen = {}
        for i, x in enumerate(nums):
            if target - x in seen:
                return [seen[target - x], i]
            seen[x] = i
        return []
```python
for _ in range(int(input())):
    print("YES" if input() == input()[::-1] else "NO")
```
"""


def _corpus() -> list[str]:
    text = resources.files("tasks").joinpath("data/sample_problems.jsonl").read_text()
    docs = []
    for line in text.splitlines():
        if line.strip():
            row = json.loads(line)
            docs.append(
                "\nQUESTION:\n"
                + row.get("question", "")
                + row.get("starter_code", "")
                + "\nUse Standard Input format\nANSWER:\n"
            )
    return docs + [_PYTHON] * 3


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[IM_START, IM_END],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer, seed: int = 0):
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        # Larger than the default 0.02: peakier logits, so greedy decoding has no near-ties that
        # float rounding (batch shape, padding) could flip.
        initializer_range=0.2,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    return model


def build_tiny_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Build, save (`save_pretrained`) and return the folder of the tiny model + tokenizer."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, seed)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


if __name__ == "__main__":
    print(build_tiny_model(sys.argv[1] if len(sys.argv) > 1 else "tiny-model"))
