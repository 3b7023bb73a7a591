"""The element document built from a parsed message: the one shape the store and its readers see."""
