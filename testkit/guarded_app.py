"""app.py launched as it will be once it calls ui.guard (issue 16's app-level task): until then the hostile-
input tests run against this, and afterwards against app.py itself (then this file goes).

    GRADIO_SERVER_PORT=7861 python -m testkit.guarded_app
"""

from __future__ import annotations

import os

# What the app will do before building its Blocks: Gradio's version check runs at gr.Blocks().
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import app  # noqa: E402  (after the environment above)
from ui.guard import guard  # noqa: E402

if __name__ == "__main__":
    # show_error off: Gradio's own exception texts can name server paths; our messages are gr.Error.
    app.demo.launch(**{**app.LAUNCH, "show_error": False}, app_kwargs=guard(app.demo))
