"""One module per endpoint; ``routes()`` in the app module puts them together."""
