"""Whole experiments from a TOML config: ``config`` (TOML -> dataclasses), ``runner``
(``run_experiment``), ``demo`` (``make demo``). Importing this package loads no framework."""
