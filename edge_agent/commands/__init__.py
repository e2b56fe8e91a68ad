"""Subcommands of ``edge-agent``: each module here exposes ``register(subparsers)``.

Modules are discovered by name, so adding a command never touches ``cli.py``. A module that
fails to import becomes a command that explains the failure instead of breaking the CLI.
"""

# nothing to import from here: cli.build_parser finds the command modules by name
__all__: list[str] = []
