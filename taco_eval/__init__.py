"""taco-eval: fast, trustworthy, sandboxed evaluation of code LLMs on TACO.

This package is the shell (the `taco-eval` command); nothing else in the project imports it
(docs/architecture.md)."""

__version__ = "0.1.0"
