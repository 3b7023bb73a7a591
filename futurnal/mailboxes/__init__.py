"""What is known about each mailbox outside its actors, so a restart keeps it: paused, login
refused, and its status as stored on disk."""
