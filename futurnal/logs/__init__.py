"""What the service writes about itself: logging set up once, the redaction every line passes
through, and server text made inert before a terminal or a text log shows it."""
