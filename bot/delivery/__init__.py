"""Getting messages out: the outbox and its rate limiter, and the scheduler that fills it."""
