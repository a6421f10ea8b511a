"""A JupyterHub service that serves the local MathJax (hub/node_modules/mathjax) to every page of
the hub, at ``/services/mathjax/`` (``hub/jupyterhub_config.py`` starts it).

nbgrader's formgrader and the feedback pages load MathJax 2 from a CDN by default; ``make hub``
points them here instead (``hub/rnnhub.py``: ``MATHJAX_TEMPLATE``), so math renders without
internet. The files are public (MathJax itself); fonts are sent with ``Access-Control-Allow-Origin``
because a feedback page opened from a user's server runs sandboxed (an opaque origin), and
browsers load web fonts only with CORS.
"""

from __future__ import annotations

import asyncio
import os
import sys
from urllib.parse import urlparse

from tornado import web


class MathJaxFiles(web.StaticFileHandler):
    def set_extra_headers(self, path):
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Cache-Control", "public, max-age=86400")


class Index(web.RequestHandler):
    """The service's own address (JupyterHub checks that it answers)."""

    def get(self):
        self.write("MathJax for nbgrader's pages: load MathJax.js from here\n")


async def main(folder: str) -> None:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/mathjax/").rstrip("/")
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8010"))
    app = web.Application([(rf"{prefix}/?", Index),
                           (rf"{prefix}/(.+)", MathJaxFiles, {"path": folder})])
    app.listen(url.port, url.hostname)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
