from __future__ import annotations

from futurnal.mail.folder_sync import FolderSyncResult
from futurnal.mail.sync_runs import FolderJob, SyncRuns


def _result(folder: str, fetched: int = 1) -> FolderSyncResult:
    return FolderSyncResult("m", folder, fetched, 0, False, 7, fetched)


def test_a_run_finishes_when_every_folder_reported_and_waiters_get_the_report() -> None:
    runs = SyncRuns("m", ("INBOX", "Archive"))
    jobs = runs.request((), waiter="caller")
    assert jobs == [FolderJob(1, "INBOX"), FolderJob(1, "Archive")]
    assert runs.folder_done(1, "INBOX", _result("INBOX", 3), None) == ([], None)
    next_jobs, finished = runs.folder_done(1, "Archive", None, "boom")
    assert next_jobs == [] and finished is not None
    assert finished.waiters == ("caller",)
    assert finished.report.fetched == 3
    assert finished.report.errors == (("Archive", "boom"),)
    assert not finished.report.ok


def test_ticks_during_a_run_coalesce_into_one_follow_up_run() -> None:
    runs = SyncRuns("m", ("INBOX",))
    runs.request(())
    for _ in range(20):
        assert runs.request((), waiter="w") == []
    jobs, finished = runs.folder_done(1, "INBOX", _result("INBOX"), None)
    assert finished is not None and finished.waiters == ()
    assert jobs == [FolderJob(2, "INBOX")]
    _, second = runs.folder_done(2, "INBOX", _result("INBOX"), None)
    assert second is not None and len(second.waiters) == 20
    assert not runs.running


def test_late_answers_from_an_old_run_are_ignored() -> None:
    runs = SyncRuns("m", ("INBOX",))
    runs.request(())
    runs.folder_done(1, "INBOX", _result("INBOX"), None)
    runs.request(())
    assert runs.folder_done(1, "INBOX", _result("INBOX"), None) == ([], None)
    assert runs.running


def test_fetcher_restart_redrives_pending_folders_until_the_limit() -> None:
    runs = SyncRuns("m", ("INBOX", "Archive"), max_redrives=2)
    runs.request(())
    runs.folder_done(1, "INBOX", _result("INBOX"), None)
    assert runs.fetcher_restarted() == ([FolderJob(1, "Archive")], None)
    assert runs.fetcher_restarted() == ([FolderJob(1, "Archive")], None)
    jobs, finished = runs.fetcher_restarted()
    assert jobs == [] and finished is not None
    assert finished.report.errors[0][0] == "Archive"
    assert "crashed 3 times" in finished.report.errors[0][1]
