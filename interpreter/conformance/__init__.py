"""Conformance: the reference interpreter and a ``bot.js`` must agree byte for byte."""

from .derive import Script, derive_scripts
from .harness import Divergence, Report, check_conformance, run_script

__all__ = ["Divergence", "Report", "Script", "check_conformance", "derive_scripts", "run_script"]
