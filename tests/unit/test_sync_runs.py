from __future__ import annotations

from futurnal.sync.folder_sync import FolderSyncResult
from futurnal.sync.sync_runs import FolderJob, SyncRuns

RESOLVE = None


def _result(folder: str, fetched: int = 1) -> FolderSyncResult:
    return FolderSyncResult("m", folder, fetched, 0, False, 7, fetched)


def test_a_whole_mailbox_run_resolves_folders_first_then_syncs_each() -> None:
    runs = SyncRuns("m")
    assert runs.request((), waiter="caller") == [FolderJob(1, RESOLVE)]
    jobs, finished = runs.resolved(1, ("INBOX", "Archive"), (("Nope", "folder 'Nope' does not exist"),))
    assert jobs == [FolderJob(1, "INBOX"), FolderJob(1, "Archive")] and finished is None
    assert runs.folder_done(1, "INBOX", _result("INBOX", 3), None) == ([], None)
    _, finished = runs.folder_done(1, "Archive", None, "boom")
    assert finished is not None
    assert finished.waiters == ("caller",)
    assert finished.report.fetched == 3
    assert set(finished.report.errors) == {("Archive", "boom"), ("Nope", "folder 'Nope' does not exist")}
    assert not finished.report.ok and not runs.running


def test_named_folders_skip_resolution() -> None:
    runs = SyncRuns("m")
    assert runs.request(("Work",)) == [FolderJob(1, "Work")]


def test_a_resolution_that_finds_nothing_finishes_the_run_with_its_errors() -> None:
    runs = SyncRuns("m")
    runs.request(())
    jobs, finished = runs.resolved(1, (), (("*", "login failed"),))
    assert jobs == [] and finished is not None and finished.report.errors == (("*", "login failed"),)


def test_ticks_during_a_run_coalesce_into_one_follow_up_run() -> None:
    runs = SyncRuns("m")
    runs.request(("INBOX",))
    for _ in range(20):
        assert runs.request((), waiter="w") == []
    jobs, finished = runs.folder_done(1, "INBOX", _result("INBOX"), None)
    assert finished is not None and finished.waiters == ()
    assert jobs == [FolderJob(2, RESOLVE)]  # the follow-up covers the whole mailbox, once
    runs.resolved(2, ("INBOX",), ())
    _, second = runs.folder_done(2, "INBOX", _result("INBOX"), None)
    assert second is not None and len(second.waiters) == 20
    assert not runs.running


def test_named_folder_requests_during_a_run_are_merged() -> None:
    runs = SyncRuns("m")
    runs.request(("INBOX",))
    runs.request(("Work",))
    runs.request(("Archive",))
    jobs, _ = runs.folder_done(1, "INBOX", _result("INBOX"), None)
    assert jobs == [FolderJob(2, "Archive"), FolderJob(2, "Work")]


def test_late_answers_from_an_old_run_are_ignored() -> None:
    runs = SyncRuns("m")
    runs.request(("INBOX",))
    runs.folder_done(1, "INBOX", _result("INBOX"), None)
    runs.request(("INBOX",))
    assert runs.folder_done(1, "INBOX", _result("INBOX"), None) == ([], None)
    assert runs.resolved(1, ("INBOX",), ()) == ([], None)
    assert runs.running


def test_fetcher_restart_redrives_resolution_and_pending_folders_until_the_limit() -> None:
    runs = SyncRuns("m", max_redrives=2)
    runs.request(())
    assert runs.fetcher_restarted() == ([FolderJob(1, RESOLVE)], None)
    runs.resolved(1, ("INBOX", "Archive"), ())
    runs.folder_done(1, "INBOX", _result("INBOX"), None)
    assert runs.fetcher_restarted() == ([FolderJob(1, "Archive")], None)
    assert runs.fetcher_restarted() == ([FolderJob(1, "Archive")], None)
    jobs, finished = runs.fetcher_restarted()
    assert jobs == [] and finished is not None
    assert finished.report.errors[0][0] == "Archive"
    assert "crashed 3 times" in finished.report.errors[0][1]


def test_a_queued_follow_up_can_be_withdrawn_with_its_waiters() -> None:
    runs = SyncRuns("alice")
    runs.request(("INBOX",))
    assert runs.take_follow_up() is None
    runs.request(("Archive",), waiter="w1")
    runs.request((), waiter="w2")
    assert runs.take_follow_up() == ((), ["w1", "w2"])
    assert not runs.follow_up_queued and runs.take_follow_up() is None
