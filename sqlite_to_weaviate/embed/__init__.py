"""Embeddings computed in the pipeline: each vector once, and search that is checked.

Tables whose named vectors name an embedder (``[tables.T.vectors.NAME] embedder = ...``,
``[embedders.NAME]`` in the mapping file) get their vectors from the workers
(:mod:`.worker_step`): from the object when its input did not change, from a cache
collection shared by every worker, or from the model, once per distinct input
(:mod:`.embedders`: a local numpy MiniLM, an OpenAI-compatible endpoint, or a Python
callable). Such tables live in versioned collections behind an alias, so the model can
change without downtime (:mod:`.versions`, ``sqlite-to-weaviate embeddings ...``).
docs/embeddings.md is the guide.
"""

from .errors import EmbedderConfigError, EmbedderError, EmbedderTransient, InputRefused

__all__ = ["EmbedderConfigError", "EmbedderError", "EmbedderTransient", "InputRefused"]
