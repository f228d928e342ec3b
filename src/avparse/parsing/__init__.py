"""Raw video -> events: the parse pipeline, zero-shot parsing, output files, pictures, viewer.

The library entry point is :func:`avparse.parse` (defined in :mod:`avparse.parsing.api`); this
package is named ``parsing`` so that the function and the package never share a name.
"""
