"""The process itself: freed memory returned to the system, and the crash hooks tests use."""
