"""fail2ban access: `protocol` (wire format, restricted unpickler), `client.Fail2Ban` (async socket
client), `instance.PrivateServer` (a private fail2ban-server for tests and the demo mode)."""
