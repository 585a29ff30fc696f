"""Dashboard assets (served by :mod:`icn.interfaces.http.dashboard.serve`)."""
