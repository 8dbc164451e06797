"""The program's one error type for bad configuration, and a collector for its lines."""

from __future__ import annotations

import pulumi


class ConfigError(pulumi.RunError):
    """Invalid stack configuration. A RunError, so `pulumi up` prints the message, no traceback.

    The message is one line per problem, each naming the key, the value and the fix.
    """


class ConfigProblems:
    """Every problem found in one pass, so the user fixes them all in one go."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def __bool__(self) -> bool:
        return bool(self.lines)

    def raise_if_any(self) -> None:
        if self.lines:
            raise ConfigError("\n".join(self.lines))
