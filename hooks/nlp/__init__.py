"""Clinical text understanding: the EMG impression reader and the ConText assertion engine behind it.

Import from the stable public modules, :mod:`hooks.emg_text` (``EmgTextAnalyzer``) and
:mod:`hooks.text_context` (``ContextEngine``, ``affirmed_mentions``, ``html_to_text`` ...); this package holds
their implementation, one concern per module:

========================  ==============================================================================
``textprep``              HTML to text (keeping block structure), Unicode/whitespace normalisation
``assertion``             assertion categories, ``Assertion``/``Trigger``/``Mention``, ``AnnotatedText``
``context``               the ConText engine: trigger rules, sentence splitting, scopes; ``affirmed_mentions``
``medspacy_context``      the same rules run by medspaCy (optional backend, benchmark comparison only)
``emg_sections``          EMG report preparation and section scoping (IMPRESSION yes, INDICATION no)
``emg_roots``             root/level parsing ("L5", "L4-5", "L5 and S1", "fifth lumbar root")
``emg_mentions``          radiculopathy and other-diagnosis mentions with their assertions
``emg_axon_loss``         axon-loss markers, who owns them, and chronicity
``emg_laterality``        left / right / bilateral
``emg_analyzer``          ``EmgTextAnalyzer``: the pipeline tying the above together
========================  ==============================================================================

All wording (triggers, headers, root notation, markers) lives in ``hooks/knowledge/emg_text.yaml``.
"""
