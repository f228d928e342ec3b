"""The batch harvest (``avparse harvest``): teachers over many videos, resumable and distributed.

* :func:`avparse.harvest.job.run_harvest` with a :class:`avparse.harvest.job.HarvestConfig`.
* :mod:`avparse.harvest.outputs` - the files written per clip and the finished-clip test.
* :func:`avparse.harvest.report.score_harvest` - harvest vs dense labels (``--report``).
"""
