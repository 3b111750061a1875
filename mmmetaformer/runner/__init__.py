"""Building and running mmengine Runners for this package's configs."""
