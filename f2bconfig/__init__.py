"""fail2ban's configuration directory, changed safely: path rules, atomic writes, bangui's own override
files, validation with fail2ban's own readers, apply + verify + automatic rollback, and the change log.

Blocking code only (callers offload it to a thread); imports nothing from handlers/.
"""
