"""Functions the task YAMLs name with ``!function utils.<name>``; the logic is in ``pkt.tasks``."""

from pkt.tasks import (  # noqa: F401 - re-exported for lm-eval's YAML loader
    extract_numbers,
    gsm8k_paper_prompt,
    gsm8k_target,
    humaneval_filter,
    humaneval_paper_prompt,
    mbpp_filter,
    mbpp_paper_prompt,
    mbpp_target,
    mbpp_test_split,
    mmlu_paper_prompt,
    pass_at_1,
    toy_gsm8k_target,
    toy_prompt,
)
