"""Numbers at the edges (issue 36, item 5): a numeric option of `generate` that is not finite,
lies outside its range or asks for more than memory holds exits 2 with one line that names the
option and its range, prints nothing and shows no traceback; the largest values allowed finish.
"""

import pytest

from tests.conftest import run
from tests.e2e.test_stories_cli import STORY, story_run  # noqa: F401 (a fixture)
from textwae.cli.main import generate_main
from textwae.config.schema import GENERATION_LIMITS

# the fixtures train, in the repository (in_repo)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("in_repo")]

TEXTS = ["anna went to the calm cafe .", "ben went to the busy park ."]



def refused(capfd, *args) -> str:
    """Run `generate` in this process: exit 2, nothing on stdout, one line on stderr."""
    with pytest.raises(SystemExit) as exit_:
        generate_main([str(arg) for arg in args])
    out, err = capfd.readouterr()
    assert exit_.value.code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("args, message", [
    (["sample", "--temperature", "nan"],
     "the temperature must be a finite number >= 0.0001 and at most 100, got nan"),
    (["sample", "--temperature", "inf"], "the temperature must be a finite number"),
    (["sample", "--temperature", "0"], "the temperature must be a finite number >= 0.0001"),
    (["sample", "--temperature", "1e30"], "the temperature must be at most 100, got 1e+30"),
    (["sample", "--top-p", "nan"], "top-p must be a finite number > 0 and at most 1, got nan"),
    (["sample", "--top-k", "-1"], "top-k must be a whole number >= 0, got -1"),
    (["sample", "--top-k", "1000000000000"], "top-k must be at most 1000000"),
    (["sample", "--max-length", "100000000000"], "max-length must be at most 4096"),
    (["sample", "--beam", "1000000"], "the beam width must be at most 100, got 1000000"),
    (["sample", "--beam", "0"], "the beam width must be a whole number >= 1, got 0"),
    (["sample", "--code-scale", "1e30"], "the code scale must be at most 10, got 1e+30"),
    (["sample", "--code-scale", "nan"], "the code scale must be a finite number"),
    (["sample", "--seed", "12345678901234567890123"],
     "the seed must be at most 9223372036854775807, got 12345678901234567890123"),
    (["sample", "--seed", "-1"], "the seed must be a whole number >= 0, got -1"),
    (["sample", "--n", "100000000000000"], "the number of samples must be at most 1000000"),
    (["sample", "--n", "0"], "the number of samples must be a whole number >= 1, got 0"),
    (["sample", "--redraws", "1000000000"], "redraws must be at most 100"),
    (["modes", "--n", "-3"], "the number of samples must be a whole number >= 1, got -3"),
    (["interpolate", *TEXTS, "--steps", "100000000"],
     "interpolation steps (the two ends included) must be at most 10000, got 100000000"),
    (["transfer", "--to", "1", "--strength", "1e30", TEXTS[0]],
     "the transfer strength must be at most 10, got 1e+30"),
    (["transfer", "--to", "1", "--strength=-inf", TEXTS[0]],
     "the transfer strength must be a finite number"),
    (["transfer", "--to", "1", "--strength-steps", "1000000000", TEXTS[0]],
     "transfer strength steps must be at most 100"),
    (["reconstruct", "--seed", str(2**64), TEXTS[0]], "the seed must be at most"),
])
def test_a_number_out_of_range_is_one_line_and_exit_2(trained_run, capfd, args, message):
    assert message in refused(capfd, *args, "--model", trained_run)


@pytest.mark.parametrize("args, message", [
    (["story", "--path-temperature", "1e30"], "the path temperature must be at most 10"),
    (["story", "--path-temperature", "nan"], "the path temperature must be a finite number"),
    (["story", "--max-sentences", "100000000"], "max-sentences must be at most 1000"),
    (["interpolate", "--story", STORY, STORY, "--steps", "100000000"],
     "must be at most 10000"),
])
def test_a_story_option_out_of_range_is_one_line_and_exit_2(story_run, capfd,  # noqa: F811
                                                            args, message):
    assert message in refused(capfd, *args, "--model", story_run)


def test_the_script_itself_answers_a_nan_temperature_with_one_line(trained_run):
    result = run("generate.py", "sample", "--model", trained_run, "--temperature", "nan")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "the temperature must be a finite number" in result.stderr


def test_the_longest_path_and_the_widest_beam_allowed_finish(trained_run, capfd):
    steps = int(GENERATION_LIMITS["steps"][1])
    generate_main(["interpolate", *TEXTS, "--steps", str(steps), "--greedy", "--max-length",
                   "1", "--model", str(trained_run)])
    assert len(capfd.readouterr().out.splitlines()) == steps
    beam = int(GENERATION_LIMITS["beam"][1])
    generate_main(["sample", "--n", "12", "--beam", str(beam), "--max-length", "2",
                   "--redraws", "0", "--model", str(trained_run)])
    assert len(capfd.readouterr().out.splitlines()) == 12
