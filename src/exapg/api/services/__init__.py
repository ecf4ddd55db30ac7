"""Request logic of the management API: what the routes do, beyond SQL (crud/) and HTTP."""
