"""The record a model family gives the rest of the package: what it is called, how to read its
published layouts, how long recordings are windowed, and what its model cards say.

Each family folder (`models/<family>/`) defines one `FAMILY` in its `__init__.py`; the registry
lists them. Nothing outside a family folder names a family or branches on one: it asks the record.
"""

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, Tuple

Weights = Dict[str, Any]  # checkpoint name -> mx.array


@dataclass(frozen=True)
class Family:
    model_type: str  # written in a converted folder's config.json; the family folder's name
    module: str  # import path of the family package, which exports FAMILY, ModelConfig and Model
    window: float  # seconds: default window for recordings longer than max_whole
    hop: float  # seconds between window starts (default; scaled with a user's window)
    max_whole: float  # seconds: a recording up to this long runs whole, in one pass, as the reference runs it
    license: str  # for cards when the source folder's card names none
    tags: Tuple[str, ...]  # model-card tags beside the package's own
    card_template: Path  # string.Template of the model card (in the family folder)
    recognise: Callable[[Path], bool]  # does this folder hold one of the family's published layouts?
    read: Callable[[Path], Tuple[dict, Weights]]  # that folder -> (config with model_type, raw weights)
    hub_patterns: Tuple[str, ...]  # the files of those layouts, fetched from the Hub
    layouts: str = ""  # those layouts in words, for the error that lists what load() reads

    def __post_init__(self):
        if not 0 < self.hop <= self.window:
            raise ValueError(f"{self.model_type}: need 0 < hop ({self.hop}) <= window ({self.window})")
        if self.max_whole < 0:
            raise ValueError(f"{self.model_type}: max_whole ({self.max_whole}) must not be negative")

    @property
    def package(self) -> ModuleType:
        """The family package: `.ModelConfig.from_dict(config)`, `.Model(model_config)`."""
        return importlib.import_module(self.module)


def model_exports(package: str) -> Callable[[str], Any]:
    """A family package's module `__getattr__`: ModelConfig and Model from its `model.py`.

    They are imported on first use, so that importing the package (which the CLI does before
    it parses its arguments) does not import MLX or mlx-audio's model packages.
    """

    def __getattr__(name: str) -> Any:
        if name in ("ModelConfig", "Model"):
            return getattr(importlib.import_module(f"{package}.model"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
