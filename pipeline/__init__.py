"""Orchestration that composes the stages (eval, the demo): the one package that imports several of them.

Core (``resetkit``) imports no stage and not this package; a stage (``builders``, ``judging``,
``training``) imports ``resetkit`` and itself only.  tests/resetkit/test_layering.py checks it.
"""
