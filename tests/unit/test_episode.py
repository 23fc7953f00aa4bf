"""Episode: a condition lasting many polls is warned about when it starts, not at every poll."""

from __future__ import annotations

from exporter.polling.schedule.episode import Episode


def test_the_first_occurrence_begins_an_episode_and_repeats_do_not() -> None:
    episode = Episode()
    assert episode.begins(("connection", "refused")) is True
    assert episode.begins(("connection", "refused")) is False
    assert episode.begins(("connection", "refused")) is False


def test_a_different_key_is_a_new_episode() -> None:
    episode = Episode()
    episode.begins(("connection", "DNS"))
    assert episode.begins(("connection", "refused")) is True
    assert episode.begins(("connection", "DNS")) is True


def test_ending_says_whether_there_was_an_episode_and_the_next_one_is_new() -> None:
    episode = Episode()
    assert episode.ends() is False
    episode.begins(True)
    assert episode.ends() is True
    assert episode.ends() is False
    assert episode.begins(True) is True
