"""Embedders and the embedding cache: the low layer of "embeddings computed in the pipeline".

Pluggable embedders chosen in the mapping file (:mod:`.config`): a local numpy MiniLM
(:mod:`.minilm`, files from :mod:`.model_files`), an OpenAI-compatible endpoint
(:mod:`.openai_api`) or a Python callable (:mod:`.embedders`); the cache collection every
worker shares (:mod:`.cache`), the fingerprints that decide whether an input must be
embedded again (:mod:`.text`), rate limits and counters. What uses them sits above:
the worker's step (``writer.embedding``), the collection versions (``mapping.versions``,
``collection_versions``), the model-change commands (``operate.embeddings``) and
``verify --search``. docs/embeddings.md is the guide.
"""

from .errors import EmbedderConfigError, EmbedderError, EmbedderTransient, InputRefused

__all__ = ["EmbedderConfigError", "EmbedderError", "EmbedderTransient", "InputRefused"]
