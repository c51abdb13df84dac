"""Unit tests of reading py-spy's collapsed stacks into a top-functions summary."""

from pyspy import busiest, parse_collapsed, self_lines, short_frame, top_functions, top_text

SITE = "/r/.venv/lib/python3.11/site-packages"
MAIN = "<module> (/r/.venv/bin/stats:8)"
RUN = f"run ({SITE}/x/loop.py:10)"
HANDLE = "handle (/r/services/stats/src/stats/actions.py:{})"
RAW = "\n".join(
    [
        f"{MAIN};{RUN};{HANDLE.format(40)};execute ({SITE}/sqlalchemy/engine.py:99) 30",
        f"{MAIN};{RUN};{HANDLE.format(41)} 10",
        f"{MAIN};run ({SITE}/x/loop.py:12);{RUN} 60",
        "not a stack line",
    ]
)


def test_frames_lose_line_numbers_and_install_prefixes() -> None:
    assert short_frame("run (/r/.venv/lib/python3.11/site-packages/x/loop.py:10)") == (
        "run (x/loop.py)"
    )
    assert short_frame("handle (/r/services/stats/src/stats/actions.py:40)") == (
        "handle (stats/actions.py)"
    )
    assert short_frame("weird frame") == "weird frame"


def test_collapsed_lines_become_stacks_with_counts() -> None:
    stacks = parse_collapsed(RAW)
    assert [count for _, count in stacks] == [30, 10, 60]
    assert stacks[1][0][-1] == "handle (stats/actions.py)"


def test_self_time_is_the_innermost_frame_and_inclusive_counts_a_recursion_once() -> None:
    total, own, inclusive = top_functions(parse_collapsed(RAW))
    assert total == 100
    assert own[0] == ("run (x/loop.py)", 60)
    assert dict(own)["execute (sqlalchemy/engine.py)"] == 30
    assert dict(inclusive)["run (x/loop.py)"] == 100  # not 160: the recursion counts once
    assert dict(inclusive)["handle (stats/actions.py)"] == 40


def test_the_text_shows_shares_of_all_samples() -> None:
    text = top_text("stats", 8.0, parse_collapsed(RAW))
    assert "100 samples over 8 s" in text
    assert " 60.0%  run (x/loop.py)" in text


def test_busiest_is_the_pid_whose_ticks_grew_most() -> None:
    assert busiest({1: 100, 2: 5}, {1: 110, 2: 50, 3: 20}) == 2
    assert busiest({}, {}) is None


def test_the_table_gets_a_few_short_self_time_lines_and_nothing_after_them() -> None:
    text = top_text("stats", 8.0, parse_collapsed(RAW))
    assert self_lines(text, count=10) == [
        "self 60.0%  run (x/loop.py)",
        "self 30.0%  execute (sqlalchemy/engine.py)",
        "self 10.0%  handle (stats/actions.py)",
    ]
    assert self_lines(text, count=1, width=15) == ["self 60.0%  ..."]
    assert self_lines("no profile") == []
