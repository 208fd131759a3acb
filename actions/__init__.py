"""Every state-changing operation of bangui, one audited function each (see actions/base.py).

HTTP handlers, the CLI and jobs change state only through these. Modules by resource: bans, users,
tokens, auth (login/logout/setup), blocklists, jobs.
"""
