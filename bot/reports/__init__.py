"""What regulators read: status, digests, Excel exports and charts, computed from the
database for a Scope. Plain functions, no Telegram: the regulator router, the CLI and
the digest job call them."""
