"""Watching a running lab: socket tables, connections, the event timeline, captures, lookups."""
