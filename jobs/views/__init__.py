"""Views, by topic: accounts, jobs (one job), compose (the generate form), gallery (My videos),
sharing (public share links), spending, review (the admin cost review)."""
