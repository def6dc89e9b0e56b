"""resetkit: build RESET datasets (paper: "Dancing in Chains", Wu et al. 2024) and train on them.

The core package holds what every stage shares: the versioned Parquet store, the
schemas between stages, config/registry helpers, SQL access and Hub publishing.
Stage packages (builders, judging, training) import from here and never from each other.
"""

__version__ = "0.1.0"
