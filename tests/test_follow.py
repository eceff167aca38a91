"""Live training curves: each epoch read from the run's checkpoints once, in order."""

import json
import time

from latentsci.runtime.follow import EpochFeed, following, newest_history


def _checkpoint(run, stamp: str, epochs: int) -> None:
    folder = run / f"checkpoint_{stamp}"
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"history": [{"epoch": e, "loss": 1.0 / (e + 1)}
                                                              for e in range(epochs)]}))


def _wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_each_epoch_is_handed_on_once_live_and_the_rest_at_the_end(tmp_path):
    run = tmp_path / "train"
    seen = []
    feed = EpochFeed(seen.append)
    with following(run, feed, every_s=0.02):
        assert not _wait_for(lambda: seen, 0.1)  # no checkpoint yet: nothing, and no error
        _checkpoint(run, "2026-01-01_00-00-01", 1)
        assert _wait_for(lambda: [r["epoch"] for r in seen] == [0])
        _checkpoint(run, "2026-01-01_00-00-02", 3)
        assert _wait_for(lambda: [r["epoch"] for r in seen] == [0, 1, 2])
        (run / "checkpoint_manager_snapshot.json").write_text("{}")  # Ray's file, not a folder
    feed.offer([{"epoch": e, "loss": 0.0} for e in range(5)])  # the final history
    assert [r["epoch"] for r in seen] == [0, 1, 2, 3, 4]


def test_a_checkpoint_still_being_written_falls_back_to_the_previous_one(tmp_path):
    run = tmp_path / "train"
    assert newest_history(run) == []
    _checkpoint(run, "2026-01-01_00-00-01", 2)
    (run / "checkpoint_2026-01-01_00-00-02").mkdir()
    (run / "checkpoint_2026-01-01_00-00-02" / "meta.json").write_text('{"histo')
    assert [r["epoch"] for r in newest_history(run)] == [0, 1]


def test_epochs_finished_just_before_a_crash_are_still_handed_on(tmp_path):
    run = tmp_path / "train"
    seen = []
    try:
        with following(run, EpochFeed(seen.append), every_s=60):  # no poll before the crash
            _checkpoint(run, "2026-01-01_00-00-01", 2)
            raise RuntimeError("worker group lost")
    except RuntimeError:
        pass
    assert [r["epoch"] for r in seen] == [0, 1]


def test_a_failing_callback_stops_the_live_feed_with_a_warning_not_the_run(tmp_path, recwarn):
    run = tmp_path / "train"
    _checkpoint(run, "2026-01-01_00-00-01", 1)

    def broken(row):
        raise OSError("tracking server unreachable")

    expected = "live training curves stopped: tracking server unreachable"
    with following(run, EpochFeed(broken), every_s=0.02):
        assert _wait_for(lambda: any(expected in str(w.message) for w in recwarn))
