"""Celery workers: thin tasks that load a job, call the library workflow and record the outcome."""
