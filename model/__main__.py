"""``python -m model fetch|verify``: fetch the official weight files, or check files on disk (``make weights``).

The entry point lives here rather than in ``model.weights`` because the package imports that module, and running an
already imported module as ``__main__`` makes Python warn that it may behave unpredictably.
"""

from model.weights import main

if __name__ == "__main__":
    raise SystemExit(main())
