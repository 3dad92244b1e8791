"""The models the explore page can switch between: the one it was started with and the shipped ones.

Each explorer is loaded on first use and kept (a shipped model loads in seconds); requests name the
model they are about (`{"model": "synth64", ...}`) or get the first one.
"""

from __future__ import annotations

import threading

from .checks import RequestError, check_text, shown
from .session import Explorer


class Catalogue:
    """Explorers by model name: `first` (given on the command line) and every shipped generator."""

    def __init__(self, first: Explorer, shipped: list[str] | None = None):
        from genfields.stylegan2 import shipped_models

        self.first = first.model_name
        self.names = [self.first] + [m for m in (shipped_models() if shipped is None else shipped) if m != self.first]
        self._loaded = {self.first: first}
        self._lock = threading.Lock()

    def get(self, name: str | None = None) -> Explorer:
        """The explorer of model `name` (None: the first), loading it with its shipped editor on first use."""
        if name is None:
            return self._loaded[self.first]
        check_text(name, "model")
        if name not in self.names:
            raise RequestError(f"model: no model {shown(name)} here; the page offers {', '.join(self.names)}", "model")
        if name in self._loaded:  # no lock: a model that loads blocks only the requests that need it
            return self._loaded[name]
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = Explorer.load(name, "auto")
            return self._loaded[name]
