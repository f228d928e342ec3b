"""How the student's R(2+1)D-18 input is sampled from video (torch-free, so the harvest planner,
the CLI and the parser can read it without importing torch).

The published ``feats/r2plus1d_18`` (10, 512) come from frames decoded at 8 fps and resized to
112x112 (plain resize, no crop), cut into one 8-frame snippet per one-second segment
(:func:`avparse.features.r2plus1d.snippets`).
"""

SNIPPET_FPS = 8
"""Frames per second decoded for the snippets; one snippet = the 8 frames of one second."""
SNIPPET_SIZE = 112
"""Frame side in pixels (the Kinetics training resolution)."""
