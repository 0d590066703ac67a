# The tests' hook into a playbook run (tests/support/fleet.AfterTask): once the task named
# $PSQ_AFTER_TASK succeeded on host $PSQ_AFTER_HOST, write $PSQ_AFTER_DIR/request and wait
# (bounded) for $PSQ_AFTER_DIR/done. Callbacks run as the strategy handles the results, before
# it starts the next task or wave.
from __future__ import annotations

import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: after_task
type: aggregate
short_description: block a playbook run at one task's result until the test has acted
description: see tests/support/fleet.py AfterTask.
"""

WAIT = 600.0


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "after_task"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.fired = False

    def v2_runner_on_ok(self, result, **kwargs):
        host = result._host.get_name()
        if self.fired or host != os.environ.get("PSQ_AFTER_HOST"):
            return
        if result._task.get_name() != os.environ.get("PSQ_AFTER_TASK"):
            return
        self.fired = True
        folder = os.environ["PSQ_AFTER_DIR"]
        with open(os.path.join(folder, "request"), "w") as f:
            f.write(f"{host}\n")
        deadline = time.monotonic() + WAIT
        while not os.path.exists(os.path.join(folder, "done")):
            if time.monotonic() > deadline:
                raise RuntimeError(f"after_task: no {folder}/done within {WAIT:g}s")
            time.sleep(0.2)
