from __future__ import annotations

from futurnal.supervisors.restart_intensity import RestartIntensity


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_more_than_r_restarts_within_t_seconds_is_refused() -> None:
    clock = FakeClock()
    intensity = RestartIntensity(3, 10.0, clock)
    assert [intensity.allow() for _ in range(3)] == [True, True, True]
    clock.now = 9.9
    assert intensity.allow() is False


def test_the_window_slides_so_old_restarts_stop_counting() -> None:
    clock = FakeClock()
    intensity = RestartIntensity(2, 10.0, clock)
    assert intensity.allow() and intensity.allow()
    clock.now = 5.0
    assert not intensity.allow()
    clock.now = 10.0  # the two restarts at t=0 have left the window
    assert intensity.allow()
    assert intensity.allow()
    assert not intensity.allow()
