"""The one native part: judging/_native.c, the metric stage's kernels (see its header).

Optional: where no C compiler is found the package still installs, and the judges run on
their pure-Python paths (same numbers, slower).  Everything else is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "judging._native", ["judging/_native.c"], optional=True,
    # no fused multiply-add: ROUGE-L floats must be rouge_score's, operation by operation
    extra_compile_args=["-O2", "-ffp-contract=off"],
)])
