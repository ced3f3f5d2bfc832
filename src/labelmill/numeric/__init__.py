"""The numeric core: functions over arrays (confidence, calibration, thresholds with a bound)."""
