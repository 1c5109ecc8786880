"""The benchmark (`make bench`): Shiftboard against three baselines a team would
otherwise ship, and a floor, on the same data, server and load driver.

- ``settings.py`` / ``urls.py``: the bench-only Django configuration (Shiftboard at
  /api/v1/, baselines under /bench/naive/, /bench/tuned/, /bench/cachalot/, the floor
  at /bench/floor/).
- ``baselines.py``: the baselines' serializers and viewsets; ``views.py``: the floor.
- ``middleware.py``: django-cachalot switched on only under /bench/cachalot/.
- ``run.py``: the command (data, server, load, report); ``wrk.py`` the wrk runs,
  ``mix.py`` the realistic mix driver, ``prepare.py`` the actors of the mix,
  ``report.py`` the tables and plots.
"""
