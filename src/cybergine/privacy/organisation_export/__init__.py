"""A whole organisation's data, for its owners to take away (policy §11: the 30 days of
grace after an organisation's deletion are there to export its data).

``models`` the export's row, ``archive`` what goes into the ZIP and how it is written
(JSON Lines per table, files apart, a manifest of SHA-256 hashes), ``service`` the
request, the job's build, the single-use link and the download, ``tasks`` the jobs,
``api`` the routes.
"""
