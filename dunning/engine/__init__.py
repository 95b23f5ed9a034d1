"""The dunning engine (SPEC §7, D1-D13): which communication is due for which bill on a date.

``rules`` holds the D-rules as one pure function of a bill's facts; ``run`` reads the due bills through
their stored next due date (D13), decides once per distinct set of facts and writes in bulk.
"""

from __future__ import annotations

from dunning.engine.run import Decision, RunDecisions, run_dunning

__all__ = ["Decision", "RunDecisions", "run_dunning"]
