"""Botkiln: declarative Telegram bots, verified and run.

The subpackages are the repository's top-level folders, reached through relative
symlinks (DESIGN §1): ``botkiln.interpreter``, ``botkiln.generator``,
``botkiln.workers``, ``botkiln.graphql`` (a namespace portion, so that it never
shadows graphql-core) and ``botkiln.infra``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
