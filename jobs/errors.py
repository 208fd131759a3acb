"""Exceptions a job may raise to tell the scheduler how to record its failure."""


class JobFailed(Exception):
    """A failure the job has already explained in the log (a warning naming the fix): the scheduler records it
    as an error and retries, without logging a traceback of its own."""
