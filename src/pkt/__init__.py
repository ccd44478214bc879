"""Cross-scale parametric knowledge transfer (Seeking, SemAlign) as a reproducible pipeline."""
