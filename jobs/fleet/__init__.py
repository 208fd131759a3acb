"""The `fleet` job: the host's fleet agent, run by the host leader in fleet mode (only with BANGUI_FLEET_URL).

It applies the fleet log (fleet/log.py) on this host through the ban and unban actions, so it sits where jobs sit,
above the action layer; the log, the keys, the lease and the watcher it drives are the `fleet` package's, below it.
- `jobs.fleet.agent`: the agent's loops (heartbeat, consume, watch, lease, answer) and the `fleet_job` itself;
- `jobs.fleet.applying`: how one entry of the log is applied (who acts, the history origin, what is refused);
- `jobs.fleet.join`: a new host's bulk catch-up on the bans in effect;
- `jobs.fleet.blocklists`: the fleet's blocklist imports on the fleet leader.
"""
