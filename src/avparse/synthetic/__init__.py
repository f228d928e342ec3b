"""The synthetic world: LLP-like and AVE-like data roots for tests, the demo and benchmarks.

A small, documented world model (``docs/synthetic.md``), not a method-friendly toy:

* :mod:`~avparse.synthetic.config` - every knob (:class:`SyntheticConfig`) and the seeded streams;
* :mod:`~avparse.synthetic.events` - which classes a clip has, in which modality and when, from
  statistics of the real LLP and AVE annotations;
* :mod:`~avparse.synthetic.world` - class prototypes, student features and the two one-modality
  teachers' logits;
* :mod:`~avparse.synthetic.labels` - thresholds and labels by the real teacher code
  (:mod:`avparse.teachers.calibrate`, :mod:`avparse.teachers.rule`);
* :mod:`~avparse.synthetic.roots` - data roots in the published layout (annotations, features,
  the harvest's files) or the same arrays in memory.
"""

from avparse.synthetic.config import SyntheticConfig
from avparse.synthetic.events import load_stats, sample_ave_events, sample_llp_events
from avparse.synthetic.roots import (
    COMPLETE_MARKER,
    FEATURE_SETS,
    FUSED,
    STARTED_MARKER,
    THRESHOLDS_FILE,
    SplitArrays,
    fused_root,
    generate_arrays,
    generate_ave,
    generate_llp,
    is_complete,
    is_synthetic,
)

__all__ = [
    "COMPLETE_MARKER",
    "FEATURE_SETS",
    "FUSED",
    "STARTED_MARKER",
    "THRESHOLDS_FILE",
    "SplitArrays",
    "SyntheticConfig",
    "fused_root",
    "generate_arrays",
    "generate_ave",
    "generate_llp",
    "is_complete",
    "is_synthetic",
    "load_stats",
    "sample_ave_events",
    "sample_llp_events",
]
