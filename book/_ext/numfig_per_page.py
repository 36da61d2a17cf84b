"""Sphinx extension: number figures (and tables, code blocks) from 1 on every page.

Sphinx numbers the figures of an unnumbered table of contents across the whole book (the
fourth chapter's first figure would be "Figure 23"). After Sphinx assigns its numbers, this
renumbers each page's figures of each kind 1, 2, 3, ... in their order on the page, so a
chapter's "Figure 3" is its third figure, and ``{numref}`` references agree.
"""

from __future__ import annotations


def renumber(fignumbers: dict[str, dict[str, dict[str, tuple[int, ...]]]]) -> list[str]:
    """Renumber ``env.toc_fignumbers`` per page, in place.

    Args:
        fignumbers: ``{docname: {figtype: {figure id: number tuple}}}`` as Sphinx assigns it.

    Returns:
        The docnames whose numbers changed.
    """
    changed = []
    for docname, kinds in fignumbers.items():
        for ids in kinds.values():
            order = sorted(ids, key=ids.__getitem__)
            new = {fid: (i,) for i, fid in enumerate(order, 1)}
            if new != ids:
                ids.clear()
                ids.update(new)
                if docname not in changed:
                    changed.append(docname)
    return changed


def _on_env_get_updated(app, env) -> list[str]:  # noqa: ARG001 - Sphinx's event signature
    return renumber(env.toc_fignumbers)


def setup(app):
    # after Sphinx's own TocTreeCollector (priority 500) has assigned the book-wide numbers
    app.connect("env-get-updated", _on_env_get_updated, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
