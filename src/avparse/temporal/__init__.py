"""UWAV's temporal teacher (reference section 12): a transformer over a clip's CLIP / CLAP
segment embeddings, pretrained on dense audio-visual labels, that labels any vocabulary
through the CLIP / CLAP text embeddings of its class names.

- ``config.py``: :class:`TeacherConfig` and the preset registry (torch-free)
- ``network.py``: the network and its pretraining loss (UWAV's module tree and names)
- ``checkpoint.py``: model folders (``config.json`` + ``model.safetensors``), UWAV ``.pt`` files
- ``text.py``: class text embeddings ("event features"), cached in a data root
- ``data.py``: a root's segment embeddings and labels as ragged arrays (LLP, AVE, UnAV-100)
- ``thresholds.py``: per-class thresholds (numpy)
- ``label.py``: ``avparse teacher label`` (a harvest of the teacher's own) and its report
- ``pretrain.py``: ``avparse teacher train``

Above ``train`` (it reuses the recipe, run folder and checkpoint code), below ``parsing``.
"""
