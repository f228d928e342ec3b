"""Datasets, annotation files, the published folder layout and the packed feature store."""
