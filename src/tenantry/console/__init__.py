"""The admin console: server-rendered pages (Jinja2 + htmx) over the parts' services (docs/console.md)."""
