"""Scenarios: drive a lab through steps, check what happened in socket terms, keep the evidence."""
