"""Clinical services of spine-cds: value sets, thresholds, card text and rules. No HTTP here.

`hooks.app` is the composition root: it loads the knowledge once and asks each service package
(`l5_radiculopathy/`, `emg_necessity/`) to declare its services.
"""
