"""lm-eval models whose answers are known, to test the metric path without a real model."""

from __future__ import annotations

from collections.abc import Callable

from lm_eval.api.model import LM


class OracleLM(LM):
    """Puts all its mass on the continuation ``gold(doc)`` and generates ``respond(doc)``."""

    def __init__(self, gold: Callable[[dict], str] | None = None, respond: Callable[[dict], str] | None = None):
        super().__init__()
        self.gold, self.respond = gold, respond

    def loglikelihood(self, requests):
        return [(0.0, True) if r.args[1].strip() == self.gold(r.doc).strip() else (-20.0, False) for r in requests]

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError

    def generate_until(self, requests):
        return [self.respond(r.doc) for r in requests]
