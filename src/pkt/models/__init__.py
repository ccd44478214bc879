"""The models wing: tiny Llamas built and pretrained (``build``), hub snapshots with provenance (``hub``) and a
real small chat model exported from a GGUF file (``gguf``).

Rule ``prepare_model``; every stage loads its models through ``build``. Imports the data wing and the root
helpers.
"""
