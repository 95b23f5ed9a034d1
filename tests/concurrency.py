"""Race helper for the PostgreSQL concurrency tests: start jobs in threads at the same instant."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def in_threads(*jobs: Callable[[], Any], timeout: float = 120) -> list[Any]:
    """Run each job in its own thread, released together by a barrier; return each result or exception.

    Each thread has its own database connection (closed at the end), so the jobs really race in the database.
    """
    results: list[Any] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(index: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = job()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, job)) for index, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results
