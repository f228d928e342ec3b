"""The batch harvest (``avparse harvest``): teachers over many videos, resumable and distributed.

* :func:`avparse.harvest.job.run_harvest` with a :class:`avparse.harvest.job.HarvestConfig`.
* :mod:`avparse.harvest.plan` - label rows and videos -> one work item per clip (pure).
* :mod:`avparse.harvest.manifest` - ``harvest.json``: the settings, read once, compared once.
* :mod:`avparse.harvest.models` - CLIP, CLAP and R(2+1)D-18, loaded on first use.
* :mod:`avparse.harvest.prefetch` - decoding threads ahead of the models.
* :mod:`avparse.harvest.labels` - the rule applied to one clip's logits.
* :mod:`avparse.harvest.failures` - the failures and no-audio reports (merged over ranks).
* :mod:`avparse.harvest.outputs` - the files written per clip and the finished-clip test.
* :func:`avparse.harvest.report.score_harvest` - harvest vs dense labels (``--report``).
"""
