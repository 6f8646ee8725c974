"""BotSpec v1 and the reference interpreter."""
