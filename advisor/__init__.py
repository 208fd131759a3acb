"""The advisor (issue 24): what in fail2ban's configuration does not fit this host, and the change that fixes it.

Layers: advisor may use f2b, f2bconfig, store and core; handlers and actions use it. Host facts are read
through BANGUI_HOST_ROOT (`advisor.host`); each check family is one module (`logsources`, `services`,
`lockout`, `banactions`, `retention`, `filters`, `server`) of pure functions over one `Context`
(`advisor.context`); `advisor.report` gathers the context, runs the checks and caches the answer. A fix
is applied by actions/advisor.py through the configuration engine (f2bconfig/engine.py).
"""
