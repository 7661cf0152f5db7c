"""Tiny random-weight models of the architectures code LLMs ship in, built locally from
transformers' own config classes (no hub, no download) and saved with `save_pretrained`, so the
engine loads them exactly as a real checkpoint folder. They share the BPE tokenizer of
tests/tiny_model.py.

Each model has 2 layers, hidden size 64 and 4 query heads over 2 key-value heads (where the
architecture has separate KV heads). Sliding windows are shorter than the test prompts so the
windowed caches and masks are exercised; MoE models get 4 experts, 2 per token; hybrid models
get one recurrent (or linear-attention) layer and one attention layer.

    python tests/tiny_archs.py OUT_DIR [ARCH ...]   # build and save some
"""

from __future__ import annotations

import sys
from pathlib import Path

COMMON = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    tie_word_embeddings=False,
    # Ten times transformers' default: peaky attention and activations, so continuations depend
    # on the context and greedy choices have clear margins (as in tests/tiny_model.py).
    initializer_range=0.2,
)
WINDOW = 12  # sliding-window length, shorter than every test prompt
_MOE = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)
# Multi-head latent attention with fewer KV heads in the config than query heads (COMMON's 2 vs
# 4): what made batched DeepSeek generation fail.
_MLA = dict(
    kv_lora_rank=16,
    q_lora_rank=24,
    qk_rope_head_dim=8,
    qk_nope_head_dim=8,
    v_head_dim=16,
    n_routed_experts=4,
    num_experts_per_tok=2,
    moe_intermediate_size=32,
    n_shared_experts=1,
    first_k_dense_replace=1,
)
_GPT2_NAMES = dict(n_embd=64, n_layer=2, n_head=4, n_positions=512)

# model_type → config fields beyond COMMON
ARCHS: dict[str, dict] = {
    "llama": {},
    "qwen2": dict(use_sliding_window=True, sliding_window=WINDOW, max_window_layers=1),
    "qwen3": dict(head_dim=16),  # q/k norm
    "qwen2_moe": dict(_MOE, shared_expert_intermediate_size=32),
    "qwen3_moe": dict(_MOE, head_dim=16),
    "qwen3_next": dict(
        _MOE,
        head_dim=16,
        shared_expert_intermediate_size=32,
        linear_key_head_dim=16,
        linear_value_head_dim=16,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        layer_types=["linear_attention", "full_attention"],
    ),
    "mistral": dict(sliding_window=WINDOW),
    "mixtral": dict(sliding_window=WINDOW, num_local_experts=4, num_experts_per_tok=2),
    "gemma": dict(head_dim=16),
    "gemma2": dict(head_dim=16, sliding_window=WINDOW),  # soft-capped attention: no sdpa
    "gemma3_text": dict(head_dim=16, sliding_window=WINDOW, layer_types=["sliding_attention", "full_attention"]),
    "phi3": {},
    "starcoder2": dict(sliding_window=WINDOW),
    "granite": {},
    "gpt_bigcode": _GPT2_NAMES,  # StarCoder 1 / SantaCoder: multi-query attention
    "gpt2": _GPT2_NAMES,
    "deepseek_v2": dict(_MLA, topk_method="greedy"),
    "deepseek_v3": dict(_MLA, n_group=2, topk_group=1),
    "olmo2": {},
    "cohere": {},
    "cohere2": dict(sliding_window=WINDOW, layer_types=["sliding_attention", "full_attention"]),
    "gpt_oss": dict(
        num_local_experts=4,
        num_experts_per_tok=2,
        head_dim=16,
        sliding_window=WINDOW,
        layer_types=["sliding_attention", "full_attention"],
    ),  # attention sinks: no sdpa
    "falcon_h1": dict(
        head_dim=16, mamba_d_ssm=64, mamba_n_heads=4, mamba_d_head=16, mamba_d_state=16, mamba_chunk_size=16
    ),  # attention and Mamba-2 side by side in every layer
    "mamba2": dict(num_heads=8, head_dim=16, state_size=16, n_groups=1, chunk_size=16),  # Codestral Mamba
    "rwkv": dict(context_length=512, attention_hidden_size=64),  # a recurrent state outside Cache
}


def build_arch_model(
    arch: str, tokenizer, out_dir: str | Path, *, seed: int = 0, logit_std: float | None = 8.0
) -> Path:
    """Build a random `arch` model for `tokenizer`, save it with the tokenizer, return the folder.

    `logit_std` rescales the output layer so next-token logits have about this spread on a probe
    prompt (None leaves the initial weights: flat, for sampling tests)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    special = dict(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    config = AutoConfig.for_model(arch, vocab_size=len(tokenizer), **{**COMMON, **ARCHS[arch], **special})
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    if logit_std is not None:
        probe = torch.tensor([tokenizer.encode("def solve():\n    n = int(input())\n")])
        with torch.no_grad():
            spread = model(probe).logits[0, -1].std()
            model.get_output_embeddings().weight.mul_(logit_std / float(spread))
    model.generation_config = GenerationConfig(**special)
    out = Path(out_dir)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.tiny_model import build_tokenizer

    tok = build_tokenizer()
    for name in sys.argv[2:] or ARCHS:
        print(build_arch_model(name, tok, Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-archs") / name))
