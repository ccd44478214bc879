"""The report wing: tables (``tables``, ``stats``, ``published``, ``published_tables``), figures (``figures``)
and the command-line summaries of a run (``summary``, ``timing``).

Rules ``tables`` and ``figures``. Imports the evaluation wing (protocol labels) and the ones below it.
"""
