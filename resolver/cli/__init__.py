"""The command line (`resolver resolve`, `resolver bench`, `resolver demo`): a thin shell over
the library, which knows nothing of it. `main` parses the options once, runs the command and
turns every error a user can cause into one message and an exit status."""

from resolver.cli.main import main

__all__ = ["main"]
