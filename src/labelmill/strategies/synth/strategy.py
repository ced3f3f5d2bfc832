"""synth's registration: the `labelmill synth` group (examples, summaries, instructions, responses, rationales,
critiques, preferences) and `labelmill judge` (pairs, scores)."""

from __future__ import annotations

from typing import Any

from labelmill.core.strategy import Strategy


class SynthStrategy(Strategy):
    name = "synth"

    def command(self) -> Any:
        return ["labelmill.strategies.synth.cli:synth_command", "labelmill.strategies.synth.cli:judge_command"]


STRATEGY = SynthStrategy()
