"""Generator: BotSpec -> bot.js, the AST policy and revision building."""
