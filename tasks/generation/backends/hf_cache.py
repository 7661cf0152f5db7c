"""A KV cache that grows in place instead of by concatenation.

transformers' `DynamicLayer.update` does `torch.cat([keys, new], dim=-2)` at every step, copying
the whole cache of every layer once per generated token: at batch 60 with a 500-token TACO prompt
that copy costs as much as the model's own arithmetic on CPU. This layer keeps a buffer with
room for the tokens still to come (`reserve`), writes each step's keys and values into it, and
hands attention a view of the filled part. When the buffer is full it grows geometrically.
"""

from __future__ import annotations

from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer


class GrowingLayer(DynamicLayer):
    reserve = 256  # slots allocated beyond the current length at each (re)allocation

    def __init__(self, reserve: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if reserve is not None:
            self.reserve = reserve
        self._k = self._v = None
        self._len = 0

    def _allocate(self, keys, values, capacity: int) -> None:
        import torch

        shape = (*keys.shape[:-2], capacity, keys.shape[-1])
        new_k = torch.empty(shape, dtype=keys.dtype, device=keys.device)
        new_v = torch.empty((*values.shape[:-2], capacity, values.shape[-1]), dtype=values.dtype, device=values.device)
        if self._len:
            new_k[..., : self._len, :] = self._k[..., : self._len, :]
            new_v[..., : self._len, :] = self._v[..., : self._len, :]
        self._k, self._v = new_k, new_v

    def _adopt(self, keys, values) -> None:
        """Take over existing (e.g. prefilled) keys and values."""
        self._k = self._v = None
        self._len = 0
        self._allocate(keys, values, keys.shape[-2] + self.reserve)
        self._k[..., : keys.shape[-2], :] = keys
        self._v[..., : values.shape[-2], :] = values
        self._len = keys.shape[-2]
        self.keys, self.values = self._k[..., : self._len, :], self._v[..., : self._len, :]

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        q = key_states.shape[-2]
        if self._k is None or self._len + q > self._k.shape[-2] or self._k.shape[0] != key_states.shape[0]:
            if self._k is not None and self._k.shape[0] != key_states.shape[0]:
                self._k = self._v = None
                self._len = 0
            capacity = max(self._len + q + self.reserve, 2 * self._k.shape[-2] if self._k is not None else 0)
            self._allocate(key_states, value_states, capacity)
        self._k[..., self._len : self._len + q, :] = key_states
        self._v[..., self._len : self._len + q, :] = value_states
        self._len += q
        self.keys, self.values = self._k[..., : self._len, :], self._v[..., : self._len, :]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self._len if self.is_initialized else 0

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        if self.keys is not None and self.keys.numel():
            self._adopt(self.keys, self.values)

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.get_seq_length() > 0:
            self._adopt(self.keys.repeat_interleave(repeats, dim=0), self.values.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices) -> None:
        if self.get_seq_length() > 0:
            self._adopt(self.keys[indices, ...], self.values[indices, ...])

    def reorder_cache(self, beam_idx) -> None:
        if self.get_seq_length() > 0:
            self._adopt(
                self.keys.index_select(0, beam_idx.to(self.keys.device)),
                self.values.index_select(0, beam_idx.to(self.values.device)),
            )

    def reset(self) -> None:
        self._k = self._v = None
        self._len = 0
        super().reset()


# Cache layer kinds whose `batch_repeat_interleave` copies all the state a row has, so a prompt's
# prefilled cache can be handed to its samples (a sliding window's length counter is the same for
# every row). Linear-attention and recurrent layers also hold conv / SSM states that transformers
# does not repeat: falcon_h1's hybrid layers repeat their keys but not those states, and fail a
# step later on mismatched batch sizes.
REPEATABLE_LAYERS = (DynamicLayer, GrowingLayer, DynamicSlidingWindowLayer)


def cache_layer_kinds(model_config) -> list[type]:
    """The layer classes of the cache transformers' `generate` builds for this model by default
    (DynamicLayer when the config names no layer types: the cache then makes them as it goes)."""
    return [type(layer) for layer in DynamicCache(config=model_config).layers] or [DynamicLayer]


def growing_cache(model_config, reserve: int) -> DynamicCache:
    """An empty cache whose layers are GrowingLayers with `reserve` spare slots, for a model whose
    default cache holds only full-attention `DynamicLayer`s (see `cache_layer_kinds`)."""
    cache = DynamicCache(config=model_config)
    if cache.layers:
        cache.layers = [GrowingLayer(reserve=reserve) for _ in cache.layers]
    else:
        cache.layer_class_to_replicate = type("_GrowingLayer", (GrowingLayer,), {"reserve": reserve})
    return cache
