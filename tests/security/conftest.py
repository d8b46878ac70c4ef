"""The security tests assemble real pipelines like the integration tests do."""

from tests.integration.conftest import make_settings, pipeline_factory  # noqa: F401 - fixtures
