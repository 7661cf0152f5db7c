"""One module per `taco-eval` subcommand."""
