"""The benchmark (`make bench`): Shiftboard against three baselines a team would
otherwise ship, and a floor, on the same data, server and load driver.

- ``settings.py`` / ``urls.py``: the bench-only Django configuration (Shiftboard at
  /api/v1/, baselines under /bench/naive/, /bench/tuned/, /bench/cachalot/, the floor
  at /bench/floor/).
- ``baselines.py``: the baselines' serializers and viewsets; ``views.py``: the floor
  and the slow-query hook's state (/bench/slow-query-hook/).
- ``middleware.py``: django-cachalot switched on only under /bench/cachalot/, the
  cache's bookkeeping header, and the slow-query hook taken off the connection for
  a request that asks (``X-Bench-Slow-Query-Hook: off``).
- ``run.py``: the command (data, server, load, report); ``load.py`` the wrk runs
  and the sequential probes, ``mix.py`` the realistic mix driver, ``prepare.py`` the
  actors of the mix, ``report.py`` the tables and plots.
- ``ops_cost.py``: `make ops-cost` (the slow-query hook and the connection pool);
  its in-process hook measurements also run inside `make bench`.
"""
