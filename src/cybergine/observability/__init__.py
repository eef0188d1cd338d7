"""What the platform tells its operator: Prometheus metrics (``GET /metrics``).

``metrics`` defines every series and the small functions the code records them with;
``process`` shares them between the processes of one host (Prometheus' multiprocess
mode, in a directory the product manages); ``http`` and ``job_metrics`` measure every
request and every job; ``pool`` the database pools; ``scrape`` reads the job queue at
scrape time; ``api`` serves it all to loopback clients or a bearer token.
"""
