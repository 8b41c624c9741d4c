"""Typed patient evidence, one extractor per clinical concept (see builder.py for the flow).

narrative     notes, flowsheet rows and questionnaires as prose and answers (shared by every concept)
edx_reports   EMG/NCS studies: the newest relevant report, its version and its impression
imaging       lumbar and plexus MRI reports and pending MRI orders
diagnoses     radiculopathy diagnoses (confirmed or not) and radicular symptoms
care_history  physical therapy (and whether it was a course), injections, referrals, prior surgery
red_flags     cauda equina red flags from codes, notes and forms
motor_exam    the current L5 motor exam and new neurological deficits
episode       the current episode's onset and duration
"""
