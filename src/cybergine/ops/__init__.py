"""Operating an installation: configuration checks before start-up (``check``) and the
embedded mode's backups (``backup``)."""
