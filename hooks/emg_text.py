"""EMG/NCS report text understanding: does this impression prove an L5 radiculopathy with axon loss?

Rule A (brief section 4.1) fires on an *EMG-proven L5 radiculopathy with axon loss*. Codes almost never carry
the root level or axon loss (brief section 0.2), so they must be read from the report text, and the text is
hostile: indications repeat the question ("r/o L5 radiculopathy"), impressions pair a positive finding with a
negated differential list, hedge ("cannot exclude"), cite history, use ranges (L4-5, L5-S1) and describe
mimics (fibular neuropathy with axon loss). The pipeline, one module of :mod:`hooks.nlp` per step:

1. prepare: strip HTML (keeping block structure), normalise, cap the length (``truncated`` flag);
2. scope: read only IMPRESSION/CONCLUSION/INTERPRETATION/SUMMARY sections, never INDICATION/HISTORY; with no
   header at all the whole text is read and confidence drops one level (``emg_sections``);
3. find radiculopathy mentions and link them to roots written before ("left L5 radiculopathy") or just after
   ("radiculopathies at L5 and S1"), plus named roots with a lesion word ("L5 nerve root involvement")
   (``emg_roots``, ``emg_mentions``);
4. assert each mention with the ConText engine (:mod:`hooks.text_context`): negated, uncertain,
   hypothetical, historical or family mentions are not current findings;
5. attribute axon-loss markers: a clause that names another current diagnosis owns its markers, so a mimic's
   axon loss never makes an L5 radiculopathy positive; diagnosis-free marker sentences count unless every
   muscle they name lies outside the L5 myotome (``emg_axon_loss``; laterality in ``emg_laterality``).

All wording lives in ``knowledge/emg_text.yaml``. The analyser is built once (:meth:`EmgTextAnalyzer.load`) at
start-up and is read-only afterwards. The module is pure: strings in, a frozen dataclass out.

This module is the stable import path; the implementation is :mod:`hooks.nlp.emg_analyzer`.
"""

from __future__ import annotations

from hooks.nlp.emg_analyzer import EmgTextAnalyzer, EmgTextFinding

__all__ = ["EmgTextAnalyzer", "EmgTextFinding"]
