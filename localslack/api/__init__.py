"""The Web API methods the emulator answers, by name."""

from . import chat, conversations, files
from .registry import METHODS, Method

# Importing the modules registers their methods.
__all__ = ["METHODS", "Method", "chat", "conversations", "files"]
