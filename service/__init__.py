"""The triage HTTP service: classification API, durable routing queue, clerk console."""
