"""The ledger of processed input offsets that catches records the consumer skipped (pure)."""

from __future__ import annotations

from streams.input_offsets import InputOffsets

TP = ("purchases", 1)


def test_a_partition_starts_at_the_commit_or_the_log_start() -> None:
    offsets = InputOffsets()
    assert offsets.begin(("t", 0), committed=13, log_start=0) == 13
    assert offsets.begin(("t", 1), committed=None, log_start=0) == 0  # nothing committed
    assert offsets.begin(("t", 2), committed=-1, log_start=4) == 4  # -1: no commit either
    assert offsets.begin(("t", 3), committed=2, log_start=9) == 9  # committed records expired
    assert offsets.begin(("t", 0), committed=20, log_start=0) == 13  # an earlier start stays


def test_records_in_order_leave_nothing_missing() -> None:
    offsets = InputOffsets()
    offsets.begin(TP, committed=5, log_start=0)
    for offset in (5, 6, 7):
        assert not offsets.is_repeat(TP, offset)
        assert not offsets.missing_before(TP, offset)
        offsets.processed(TP, offset)
    assert offsets.expected(TP) == 8


def test_a_jump_names_exactly_the_skipped_offsets() -> None:
    offsets = InputOffsets()
    offsets.begin(TP, committed=None, log_start=0)
    assert list(offsets.missing_before(TP, 13)) == list(range(13))  # the whole first fetch
    for offset in range(13):
        offsets.processed(TP, offset)
    offsets.processed(TP, 13)
    assert list(offsets.missing_before(TP, 15)) == [14]


def test_a_redelivered_record_is_a_repeat_and_does_not_move_the_ledger_back() -> None:
    offsets = InputOffsets()
    offsets.begin(TP, committed=10, log_start=0)
    assert offsets.is_repeat(TP, 9)  # before the commit: processed by an earlier owner
    offsets.processed(TP, 10)
    offsets.processed(TP, 11)
    assert offsets.is_repeat(TP, 10) and offsets.is_repeat(TP, 11)
    offsets.processed(TP, 10)  # a repeat handled anyway must not rewind
    assert offsets.expected(TP) == 12
    assert not offsets.missing_before(TP, 11)


def test_a_partition_behind_its_end_is_stalled_only_without_progress_between_checks() -> None:
    offsets = InputOffsets()
    offsets.begin(TP, committed=0, log_start=0)
    assert offsets.stalled(TP, end_offset=13) is None  # first sight: maybe just busy
    offsets.processed(TP, 0)
    assert offsets.stalled(TP, end_offset=13) is None  # it moved: busy, not stalled
    assert offsets.stalled(TP, end_offset=13) == 1  # no move since the last check
    assert offsets.stalled(TP, end_offset=13) is None  # re-armed: two more checks needed
    assert offsets.stalled(TP, end_offset=13) == 1


def test_a_partition_at_its_end_is_never_stalled() -> None:
    offsets = InputOffsets()
    offsets.begin(TP, committed=3, log_start=0)
    assert offsets.stalled(TP, end_offset=3) is None
    assert offsets.stalled(TP, end_offset=3) is None
    assert offsets.stalled(TP, end_offset=4) is None
    for offset in range(3, 4):
        offsets.processed(TP, offset)
    assert offsets.stalled(TP, end_offset=4) is None  # caught up in between


def test_a_wake_up_reads_back_only_a_partition_still_stalled_with_nothing_on_its_way() -> None:
    offsets = InputOffsets()
    offsets.begin(TP, committed=13, log_start=0)
    # Nothing handed on since the seek to the commit (13), or nothing at all: read back.
    assert offsets.still_missing(TP, 13, handed_on=13, end_offset=16) == range(13, 16)
    assert offsets.still_missing(TP, 13, handed_on=None, end_offset=16) == range(13, 16)
    assert offsets.still_missing(TP, 13, handed_on=12, end_offset=16) == range(13, 16)
    # A later record handed on and not processed yet: it reveals any hole itself.
    assert not offsets.still_missing(TP, 13, handed_on=14, end_offset=16)
    assert not offsets.still_missing(TP, 13, handed_on=None, end_offset=13)  # at its end
    assert not offsets.still_missing(TP, 13, handed_on=None, end_offset=None)  # end unknown
    offsets.processed(TP, 13)
    assert not offsets.still_missing(TP, 13, handed_on=13, end_offset=16)  # it moved on
    assert offsets.still_missing(TP, 14, handed_on=13, end_offset=16) == range(14, 16)


def test_clear_forgets_every_partition_for_a_new_assignment() -> None:
    offsets = InputOffsets()
    offsets.begin(TP, committed=7, log_start=0)
    offsets.stalled(TP, end_offset=9)
    offsets.clear()
    assert TP not in offsets
    offsets.begin(TP, committed=2, log_start=0)
    assert offsets.expected(TP) == 2
    assert offsets.stalled(TP, end_offset=9) is None  # the old check does not carry over
