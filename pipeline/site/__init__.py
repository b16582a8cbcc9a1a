"""A static report site of the experiments, the paper tables and the test videos.

``python -m pipeline.site build`` writes ``reports/site/`` (open ``reports/site/index.html``;
the pages and their parts: :mod:`pipeline.site.build`); ``python -m pipeline.experiments.tables
render
--site`` renders the tables and then builds the site. The pages work from ``file://`` with
no network: the Vega-Lite JavaScript comes from the ``vl-convert-python`` package at build
time, never from a CDN at view time. ``python -m pipeline.site figure`` exports the timeline
comparison of chosen videos and runs as a publication-size PDF and PNG
(:mod:`pipeline.site.figure`).

Why a command and not a DVC stage: the site shows the DVC *experiments* of ``HEAD``
(``refs/exps/``, local or pulled), which are git refs and not files a stage could declare
as dependencies, so a ``site`` stage would be silently stale after every ``dvc exp run``
and would itself run, once per experiment, inside every experiment. The site is built
after experiments, like the tables (``pipeline.experiments.tables render --site``), from committed
outputs only, and is not committed itself: a build writes only the git-ignored
``reports/site/`` (its ``data/`` and ``templates/`` also work with ``dvc plots show``).
"""
