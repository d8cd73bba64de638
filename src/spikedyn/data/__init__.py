"""Data sets read from their real on-disk formats; each module registers its loaders by name.

``load_dataset(name, root)`` returns a :class:`SpikeDataset`; ``dataset_names()`` lists them.
"""

from . import cifar, digits, dvs, mnist, nettalk, nmnist, spoken_digits, timit  # noqa: F401  (registration)
from .base import (
    DATA_ROOT_ENV,
    DataFileError,
    SpikeDataset,
    dataset_names,
    format_summary,
    holdout_validation,
    load_dataset,
    register_dataset,
    resolve_root,
    static_view,
)

__all__ = [
    "DATA_ROOT_ENV",
    "DataFileError",
    "SpikeDataset",
    "dataset_names",
    "format_summary",
    "holdout_validation",
    "load_dataset",
    "register_dataset",
    "resolve_root",
    "static_view",
]
