"""Local stack: real Weaviate and Redis servers on 127.0.0.1, started and stopped by pid.

Used by the demo, the test fixtures and the benchmarks. Weaviate is built from its Go
module with the machine's Go toolchain and cached per version; Redis is Debian's
``redis-server``.
"""
