"""Evaluation: the published LLP metrics, decision rule, event runs and scoring of TSV files."""
