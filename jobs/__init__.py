"""Background work that runs on exactly one process per data dir (the elected leader).

- `jobs.leader`: the flock election (`run_candidate`, started in every worker's lifespan when
  BANGUI_LEADER_CANDIDATE is on).
- `jobs.scheduler`: the interval scheduler the leader runs (jitter, no overlap, persisted schedule;
  the one handler of `store.leader.NotLeader`).
- `jobs.definitions`: the JOBS table (`Job`, `JobContext`, `load_jobs`).
- One module per job body: `snapshot`, `cleanup`, `archive` (history sync: one call of
  store.fail2ban_copy.sync_once; history and audit retention), `blocklists` (imports through the ban action),
  `reconcile` (write-ahead audit entries left pending by a dead process; also run at every leader's start).
docs/election.md explains the design and its failure modes.
"""
