"""resetkit: build RESET datasets (paper: "Dancing in Chains", Wu et al. 2024) and train on them.

The core package holds what every stage shares: the versioned Parquet store, the
schemas between stages, config/registry helpers, SQL access and Hub publishing.
Stage packages (builders, judging, training) import from here and never from each other;
``pipeline`` composes the stages (docs/design-notes.md, "How the code is laid out").
"""

import importlib.metadata as _metadata

try:  # written once, in pyproject.toml; the installed package's metadata carries it
    __version__ = _metadata.version("resetkit")
except _metadata.PackageNotFoundError:  # a source tree that was never installed (pip install -e . fixes it)
    __version__ = "0+unknown"

