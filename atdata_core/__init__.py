"""atdata_core: typed, sharded ML datasets: samples, shards, datasets, lenses, the index, stores and
the atmosphere (ATProto). Never imports Textual or Rich: the TUI and the CLI sit on top of it."""

from .dataset import Dataset, DatasetDict, SampleBatch
from .errors import AtdataError
from .lens import Lens, LensRegistry, find_lens, lens
from .samples import DictSample, FieldSpec, FieldType, NDArray, Packable, PackableSample, packable
from .sources import DataSource, URLSource, register_source, source_for_urls

__all__ = [
    "AtdataError",
    "DataSource",
    "Dataset",
    "DatasetDict",
    "DictSample",
    "FieldSpec",
    "FieldType",
    "Lens",
    "LensRegistry",
    "NDArray",
    "Packable",
    "PackableSample",
    "SampleBatch",
    "URLSource",
    "find_lens",
    "lens",
    "packable",
    "register_source",
    "source_for_urls",
]
__version__ = "0.1.0"
