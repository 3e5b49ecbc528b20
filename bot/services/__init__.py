"""Work done on the operator's behalf: reminders, broadcasts, regulator digests."""
