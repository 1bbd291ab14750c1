"""The LOOP web dashboard and JSON API."""
