"""A griffe extension for the API pages: the docstrings' Sphinx roles as Markdown.

The docstrings are written for ``help()`` and editors, which show roles such as
:class:`~finetune_kit.Dataset` as they are; mkdocstrings renders Markdown, where a role would
show as "class:Dataset". Each role becomes a cross-reference to the public object it names
(``[Dataset][finetune_kit.Dataset]``; a method links to its class's entry) or, when it names
something the API page does not document, a code span. Loaded by ``mkdocs.yml``.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(class|func|meth|data|attr|mod|exc|obj):`(~?)([^`]+)`")
#: The packages whose public names (``__all__``) the API page documents.
_DOCUMENTED = ("finetune_kit", "finetune_kit.local")


def _public() -> dict[str, str]:
    """Each documented name (and its dotted form) -> the identifier its entry has."""
    found: dict[str, str] = {}
    for package in reversed(_DOCUMENTED):  # finetune_kit's own names win
        module = importlib.import_module(package)
        for name in module.__all__:
            found[name] = found[f"{package}.{name}"] = f"{package}.{name}"
    return found


class SphinxRoles(griffe.Extension):
    """Rewrites ``:role:`target``` in every docstring griffe loads."""

    def __init__(self) -> None:
        super().__init__()
        self._public = _public()

    def _rewrite(self, match: re.Match[str]) -> str:
        short, target = match.group(2) == "~", match.group(3).strip()
        shown = target.rsplit(".", 1)[-1] if short else target
        if shown.endswith(("(", ")")) or match.group(1) in ("func", "meth"):
            shown = shown.rstrip("()") + "()"
        parts = target.split(".")
        # The longest leading part that names a documented object: a method links to its class.
        for end in range(len(parts), 0, -1):
            identifier = self._public.get(".".join(parts[:end]))
            if identifier is not None:
                return f"[`{shown}`][{identifier}]"
        return f"`{shown}`"

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:  # noqa: ARG002
        """Rewrite the object's docstring (every module, class, function and attribute)."""
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(self._rewrite, obj.docstring.value)
