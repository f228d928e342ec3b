"""Raw video -> events: the parse pipeline, zero-shot parsing, output files, pictures, viewer."""
