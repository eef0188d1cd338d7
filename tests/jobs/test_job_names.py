"""Services defer jobs by name (``cybergine.job_names``): every name must be a task the
worker runs, registered under exactly that name."""

from __future__ import annotations

import pytest
from procrastinate.exceptions import TaskNotFound

from cybergine.job_names import JobName
from cybergine.jobs import APP
from cybergine.queue import APP as QUEUE_APP


def test_every_job_name_is_a_task_of_the_one_app() -> None:
    assert APP is QUEUE_APP
    for name in JobName:
        assert APP.tasks[name.value].name == name.value


def test_an_unknown_name_is_refused_rather_than_queued() -> None:
    with pytest.raises(TaskNotFound):
        APP.configure_task("conversations:no_such_task", allow_unknown=False)
