"""The methods wing: every transfer method, one module or package each, registered by name (peft style).

``base`` holds what a method is (:class:`Method`) and the registry; ``lora``, ``kd`` and ``fitnet`` are one
module each; ``seeking``, ``semalign`` and ``laten`` are packages of their steps, each with a ``method``
module holding the registered class. A method is imported only when it is asked for
(:func:`get_method`), so a job loads, and its rule declares (:mod:`pkt.sources`), one method's code. A new
method is one more module here, its settings dataclass and its class's ``label`` and ``needs`` included
(README "Add a method"): the workflow reads those from its source (:mod:`pkt.rows`) and its config section from
the dataclass (``schema``, imported by the workflow, not here).
May import every wing below it (data, models, layers, evaluation, report) and the root helpers; nothing
below imports it, except the trainer (:mod:`pkt.train`) through :func:`get_method`.
"""

from pkt.methods.base import (
    BUILTIN,
    REGISTRY,
    LoraSettings,
    Method,
    base_method,
    get_method,
    method_module,
    register,
)
from pkt.rows import FIXED

__all__ = ["BUILTIN", "FIXED", "REGISTRY", "LoraSettings", "Method", "base_method", "get_method", "method_module",
           "register"]
