"""Versions of the platform's privacy policy (policy §18): the operator records one with
its effective date, at least 30 days ahead; every staff user is told by e-mail and in
the dashboard until they acknowledge it."""
