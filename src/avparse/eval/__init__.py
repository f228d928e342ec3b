"""Evaluation: the published LLP metrics, decision rule, event runs and scoring of TSV files.

``SCORE_KEYS`` (the ten LLP numbers, in the published order) and ``format_scores`` (the one table
every command prints) live in :mod:`avparse.eval.metrics` and are re-exported here. Numpy only.
"""

from avparse.eval.metrics import SCORE_KEYS, format_scores

__all__ = ["SCORE_KEYS", "format_scores"]
