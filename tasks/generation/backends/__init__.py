"""Generation backends: one module per backend, all behind `tasks.generation.backends.base.Backend`."""
