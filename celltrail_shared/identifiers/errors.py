"""The one exception every identifier rule raises."""


class IdentifierError(ValueError):
    """An identifier was rejected; ``field`` names the part at fault, ``reason`` says what to fix."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type["IdentifierError"], tuple[str, str]]:
        return (type(self), (self.field, self.reason))
