"""Monitoring of a deployed model: feature and prediction drift against a reference kept from training."""
