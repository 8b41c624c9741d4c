"""Benchmarks: `python benchmarks/run.py` (load, scaling, FHIR fallback, memory) and NLP precision."""
