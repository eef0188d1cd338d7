"""A long-lived process's start: the garbage collector paused while it loads, and what
it loaded kept out of the collector's passes afterwards.

Loading the platform (modules, routes, models, the embedding model, the pool's
connections) makes a few hundred thousand objects that live as long as the process. The
collector's passes over them while they are made free nothing and cost about an eighth of
a start's CPU; once a web process holds thousands of widget sockets, a full pass over them
would pause every one of those sockets for hundreds of milliseconds."""

from __future__ import annotations

import gc


def loading() -> None:
    """The process starts loading: no collection until :func:`loaded`."""
    gc.disable()


def loaded() -> None:
    """Everything loaded so far lives as long as the process: out of the collector's
    passes from now on, and the collector runs again for what comes next."""
    gc.freeze()
    gc.enable()
