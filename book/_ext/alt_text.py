"""Give each notebook image the alternative text recorded in its output metadata (``{"image/png": {"alt": ...}}``).

helpers.plots records a figure's title and axes there when a notebook shows it; MyST-NB reads only width and
height from output metadata, so this extension copies ``alt`` onto the image node as well.
"""

from __future__ import annotations

from typing import Any

from myst_nb.core.render import NbElementRenderer


def _with_alt(render_image: Any) -> Any:
    def render_image_with_alt(self: NbElementRenderer, data: Any) -> list:
        nodes = render_image(self, data)
        alt = str(data.output_metadata.get(data.mime_type, {}).get("alt", "")).strip()
        for node in nodes:
            if alt and not node.get("alt"):
                node["alt"] = alt
        return nodes

    render_image_with_alt.__wrapped__ = render_image
    return render_image_with_alt


def setup(app: Any) -> dict:
    """Sphinx entry point: wrap MyST-NB's image renderer once."""
    if not hasattr(NbElementRenderer.render_image, "__wrapped__"):
        NbElementRenderer.render_image = _with_alt(NbElementRenderer.render_image)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
