"""The parts that keep a run directory safe, without training: signals, the lock, and the
settings a resume may change."""

import os
import signal

import pytest

from tests.conftest import TINY
from textwae.config.loading import load_config
from textwae.errors import RunDirectoryError
from textwae.runs.lock import LOCK_FILE, run_lock
from textwae.training.interrupt import OnSignal, Stopped
from textwae.training.resume import changed_settings


def test_a_deferred_signal_is_recorded_and_a_second_one_stops_at_once():
    handler = signal.getsignal(signal.SIGTERM)
    with OnSignal(defer=True) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == signal.SIGTERM
        with pytest.raises(Stopped) as stopped:
            os.kill(os.getpid(), signal.SIGHUP)
    assert stopped.value.exit_status == 129 and str(stopped.value) == "stopped by SIGHUP"
    assert signal.getsignal(signal.SIGTERM) == handler


def test_outside_the_loop_a_signal_stops_at_once_as_ctrl_c_does():
    with pytest.raises(KeyboardInterrupt) as stopped, OnSignal(defer=False):
        os.kill(os.getpid(), signal.SIGTERM)
    assert stopped.value.exit_status == 143


def test_a_held_run_directory_is_refused_and_its_lock_file_goes_with_its_holder(tmp_path):
    (tmp_path / LOCK_FILE).write_text("")  # left by a killed run: not held by anyone
    with run_lock(tmp_path):
        with (pytest.raises(RunDirectoryError, match="is in use: another training process"),
              run_lock(tmp_path)):
            pass
        assert (tmp_path / LOCK_FILE).is_file()
    assert not (tmp_path / LOCK_FILE).exists()
    with run_lock(tmp_path):  # free again
        pass


def test_changed_settings_name_each_dotted_key_with_both_values():
    saved = load_config(TINY)
    now = load_config(TINY, overrides=["train.max_steps=9", "tokenizer.vocab_size=300"])
    assert changed_settings(saved, now) == {"train.max_steps": (4, 9),
                                            "tokenizer.vocab_size": (120, 300)}
