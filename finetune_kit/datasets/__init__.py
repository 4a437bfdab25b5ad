"""Datasets: loading, validation rules, statistics, cost estimates, splitting and upload."""
