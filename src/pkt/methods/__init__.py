"""Transfer methods, registered by name. Importing this package registers every built-in method."""

from pkt.methods import lora, seeking, semalign  # noqa: F401 - registers "lora", "seeking", "semalign"
from pkt.methods.base import REGISTRY, LoraSettings, Method, get_method, register

__all__ = ["REGISTRY", "LoraSettings", "Method", "get_method", "register"]
