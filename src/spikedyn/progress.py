"""Progress bars that only draw on a terminal.

Every long loop of the library shows a tqdm bar when asked to (``progress=True``), but only when
its output stream is a terminal: piped to a file or a CI log, the bar is off (tqdm's
``disable=None``) and the trainer's one line per epoch is what remains, instead of thousands of
redraws.
"""

from __future__ import annotations


def bar_disabled(progress: bool) -> bool | None:
    """tqdm's ``disable`` for a loop: off when ``progress`` is False, else only when not on a terminal."""
    return None if progress else True
