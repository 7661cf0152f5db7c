"""Generation backends: one module per backend, all behind `tasks.generation.backends.base.Backend`.

The one table of backend names (and of model dtypes): the CLI's choices, `ModelConfig`'s checks and
`tasks.generation.generate.load_backend` read it. A new backend: a module here, its name below, and
its constructor in `load_backend`.
"""

BACKENDS = ("hf", "vllm")
DTYPES = ("auto", "float32", "float16", "bfloat16")
