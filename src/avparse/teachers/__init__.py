"""Zero-shot teachers of VALOR: CLIP for what is seen, CLAP for what is heard.

* :class:`avparse.teachers.clip.VisualTeacher` - CLIP frame embeddings and image-text logits.
* :class:`avparse.teachers.clap.AudioTeacher` - CLAP chunk embeddings, audio-text logits and
  HTS-AT token maps; :class:`avparse.teachers.clap.AudioInputBuilder` builds its (deterministic)
  mel inputs without the model, e.g. in decoding threads.
* :mod:`avparse.teachers.rule` - the VALOR rule (logit > threshold inside the weak labels), soft
  labels and the fused teacher (numpy only).
* :mod:`avparse.teachers.calibrate` - per-class thresholds from val dense labels (numpy only).
* :func:`avparse.teachers.tiny.save_tiny_teachers` - tiny random offline models for tests.

Submodules are imported on use; this package imports nothing heavy.
"""
