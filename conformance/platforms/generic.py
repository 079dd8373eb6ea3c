"""Fallback for an OS the suite has no facts about: every mechanism is probed, nothing is assumed."""

from .facts import Facts

FACTS = Facts(NAME="generic")
