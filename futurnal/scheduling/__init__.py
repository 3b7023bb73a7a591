"""When mailboxes sync: schedules and priorities, and the queue that starts due syncs under a
limit of concurrent ones."""
