"""Route modules, one per area; each route function is thin over the service layer."""
