"""Generation backends: one module per backend, all behind `tasks.backends.base.Backend`."""
