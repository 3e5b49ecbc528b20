"""Running Zicha in production: logs, health, backups, graceful shutdown, plain failures."""
