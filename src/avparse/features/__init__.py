"""Student input features computed from raw video (R(2+1)D-18 snippets, CLIP frames, CLAP maps)."""
