"""Example applications that the demo, the tests and the docs reuse.

``examples.chat_app`` is the chat application of the original migration design: its
SQLAlchemy models produce exactly the schema the seed mapping preset describes.
"""
