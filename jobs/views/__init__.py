"""Views, by topic: accounts, jobs."""
