"""The ``papermill.engine`` entry point ``drylab``, resolved lazily.

Papermill loads its entry points while ``papermill.engines`` is being imported, and
``autograder.execute`` (where :class:`~autograder.execute.DrylabEngine` lives) imports
``papermill.engines``: pointing the entry point at the class directly would be a circular
import. This proxy has no imports; it hands every attribute lookup to the real class.
"""


class _LazyEngine:
    def __getattr__(self, name):
        from autograder.execute import DrylabEngine

        return getattr(DrylabEngine, name)


drylab_engine = _LazyEngine()
