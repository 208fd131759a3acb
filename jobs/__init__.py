"""Background work that runs on exactly one process per data dir (the elected leader).

- `jobs.leader`: the flock election (`run_candidate`, started in every worker's lifespan).
- `jobs.scheduler`: the interval scheduler the leader runs (jitter, no overlap, persisted schedule).
- `jobs.definitions`: the JOBS table (`Job`, `JobContext`, `load_jobs`) and the snapshot job.
- `jobs.cleanup`: the store cleanup job. docs/election.md explains the design and its failure modes.
"""
