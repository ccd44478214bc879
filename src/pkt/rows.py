"""Table rows that are not methods of their own: a built-in method run with some settings fixed.

``semalign_<map>`` is SemAlign with that coefficient rule (:data:`pkt.methods.semalign.bases.MAPS`), so both
maps can sit in one table as rows of their own. :mod:`pkt.config_checks` resolves a row's settings,
:mod:`pkt.methods.base` its method and module. A root helper (no import of its own), so that editing the
config checks does not touch the code every training job declares.
"""

from __future__ import annotations

from typing import Any

# Rows that run a built-in method with settings fixed over its config section: {row: (method, settings)}.
# ``semalign_<map>`` is SemAlign with that coefficient rule (pkt.methods.semalign.bases.MAPS), so both maps can
# sit in one table; pkt.methods.base resolves the row's method and module.
FIXED: dict[str, tuple[str, dict[str, Any]]] = {
    f"semalign_{kind}": ("semalign", {"map": kind}) for kind in ("logit", "cosine")
}
