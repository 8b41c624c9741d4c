"""`make demo`: the CDS Hooks sandbox, our service and a local FHIR server holding demo patients.

The public sandbox's FHIR server has no patient with an EMG report or an M47.816 order, so our cards
can never show there. The demo brings its own patients (`fhir_fixtures/demo/`), with dates relative to
today so the stories stay true, and prints one sandbox link per story. Run it with `python -m demo`.
"""
