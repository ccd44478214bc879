"""Transfer methods, registered by name. Importing this package registers every built-in method."""

from pkt.methods import fitnet, kd, laten, lora, seeking, semalign  # noqa: F401 - registers each by its name
from pkt.methods.base import REGISTRY, LoraSettings, Method, get_method, register

__all__ = ["REGISTRY", "LoraSettings", "Method", "get_method", "register"]
