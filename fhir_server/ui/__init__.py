"""The case managers' and physician reviewers' pages, served by the same server under ``/ui``.

Server-rendered (Jinja2 templates, a little htmx for the worklist's live updates, no CDN): ``pages`` is the HTTP
side, the other modules read what a page shows from the store the API uses, as the signed-in person's
organization sees it (the tenant guard filters every read; see :mod:`fhir_server.security.tenancy`).
"""
