"""The sandbox that runs generated code: programs and verdicts (``run``), the parent's fork-server pool
(``pool``), and the trusted runner and its isolation (``runner``, ``isolation``), which run by path in a
fresh interpreter and import nothing from ``pkt``.
"""
