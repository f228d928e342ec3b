"""Raw video -> events: the parse pipeline, zero-shot parsing, output files, pictures, viewer.

``avparse.parse`` is both this package and the library function ``avparse.parse(...)``: once a
submodule is imported, Python binds the package to the name ``avparse.parse``, hiding the lazily
exported function. The package is therefore callable and forwards to
:func:`avparse.parse.api.parse`, so ``avparse.parse("clip.mp4", model=...)`` always works.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from avparse.parse.api import parse

        return parse(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
