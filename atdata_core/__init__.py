"""atdata_core: typed, sharded ML datasets: samples, shards, datasets, lenses, the index, stores and
the atmosphere (ATProto). Never imports Textual or Rich: the TUI and the CLI sit on top of it."""

from .errors import AtdataError
from .samples import DictSample, FieldSpec, FieldType, NDArray, Packable, PackableSample, packable

__all__ = [
    "AtdataError",
    "DictSample",
    "FieldSpec",
    "FieldType",
    "NDArray",
    "Packable",
    "PackableSample",
    "packable",
]
__version__ = "0.1.0"
