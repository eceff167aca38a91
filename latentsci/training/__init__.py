"""Training loops as plain torch functions; Ray Train only schedules them (latentsci.runtime.train)."""
