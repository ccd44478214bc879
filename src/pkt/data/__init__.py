"""The data wing: task records and the chat format (``records``), the toy world (``toyworld``, ``toycode``),
the shared toy tokenizer (``tokenizer``) and the papers' splits converted to records (``paper``).

Rules ``prepare_data`` and ``prepare_tokenizer``. Imports only the root helpers (:mod:`pkt.io`).
"""

SOURCES = {"toy": "pkt.data.toyworld", "paper": "pkt.data.paper"}  # data.source -> the module writing its data
