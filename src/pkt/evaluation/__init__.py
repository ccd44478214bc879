"""The evaluation wing: lm-eval glue (``evaluate``), the task prompts and scoring (``tasks``), the vLLM backend
(``vllm_backend``), the run-wide verdict store (``verdicts``) and the sandbox for generated code (``sandbox/``).

Rules ``evaluate`` and ``evaluate_vanilla``. Imports the data, models and layers wings and the root helpers.
"""
