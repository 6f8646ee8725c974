"""Generator: BotSpec -> bot.js, the AST policy and revision building."""

from botkiln.generator.compiler import COMPILER_VERSION, compile_spec

__all__ = ["COMPILER_VERSION", "compile_spec"]
