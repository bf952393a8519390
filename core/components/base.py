"""What every component shares: a registry name, aliases and introspectable options."""

from __future__ import annotations

from typing import Any, ClassVar

from recfeat.plugin.options import option_specs


class Component:
    """Options are the keyword arguments of ``__init__`` (type-hinted, with defaults);
    ``Registry.create`` validates them before the constructor runs."""

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()

    def get_options(self) -> dict[str, Any]:
        """Current option values, read back from attributes of the same name."""
        return {k: getattr(self, k, None) for k in option_specs(type(self))}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.get_options().items())
        return f"{type(self).__name__}({opts})"
