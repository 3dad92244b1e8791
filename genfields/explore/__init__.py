"""`genfields explore`: a local page to see generative fields on the real network, move style channels,
and edit with masks live.

    explorer = Explorer.load("synth64")                 # generator, shipped editor, channel stds
    call(explorer, "render", {"view": {"seed": 3}})      # what the page's requests run (no web code)
    ExploreServer(explorer, port=7860).run()             # the page (needs the `explore` extra)

`session` computes (torch only), `api` turns requests into calls, `server` is the Starlette app
and `static/` the page. Nothing in genfields imports this package except the command line.
"""

from .api import call, upload
from .session import Explorer, View

__all__ = ["Explorer", "View", "call", "upload"]
