"""Building blocks of ``fhir_fixtures/build_scenarios.py`` (the scenario fixture generator).

Read in this order:

=========================  =========================================================================
``terminology``            code systems, display names, ``coding``/``concept``/``icd``
``resources``              FHIR resource builders (Condition, EMG/MRI DiagnosticReport, orders, ...),
                           the fixed clock ``NOW`` and user, and report text shared by scenarios
``model``                  ``Scenario`` (chart + drafts -> CDS Hooks request + expectation), the services
                           and their rule ids, expected-card helpers
``patient_view``           Rule A patient-view, brief scenarios 1-8
``patient_view_edges``     Rule A patient-view edge cases: brief 14, 18-20 and extras 21-23
``l5_order_select``        l5-radiculopathy-order-select, extras 24-30
``emg_ncs_necessity``      EMG/NCS necessity (Rule B), brief 9-13, 15-17 and extras 31-35
``validation``             FHIR R4B validation of every resource and consistency checks of expectations
=========================  =========================================================================

Each scenario module ends with ``SCENARIOS``, the tuple of its scenario functions; the entry point collects
them. Everything is deterministic: fixed ids, fixed dates, uuid5 hook instances.
"""
