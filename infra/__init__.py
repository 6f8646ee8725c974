"""Infrastructure: settings, the CLI, storage adapters and local service scripts."""

__all__: list[str] = []
