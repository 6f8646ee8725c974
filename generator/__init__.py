"""Generator: BotSpec -> bot.js, the AST policy and revision building.

Key contracts:

- ``compile_spec`` is deterministic: same spec + same compiler version = same bytes;
  the first line of bot.js names everything that feeds the revHash.
- No program becomes a revision without passing ``check_source`` (the AST policy)
  and the conformance gate; ``build_revision`` enforces both for every generator.
- ``revHash`` depends only on the deterministic build inputs (docs/revisions.md).
"""

from botkiln.generator.ast_policy import AST_RULES_VERSION, PolicyReport, check_source
from botkiln.generator.compiler import COMPILER_VERSION, compile_spec
from botkiln.generator.revision import BuildFailed, Revision, build_revision

__all__ = [
    "AST_RULES_VERSION",
    "COMPILER_VERSION",
    "BuildFailed",
    "PolicyReport",
    "Revision",
    "build_revision",
    "check_source",
    "compile_spec",
]
