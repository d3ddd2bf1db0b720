"""Settings from flags and NEXTWORD_* variables; start-up mistakes are one-line errors."""
import argparse
import shutil

import pytest

from conftest import SHIPPED_MODEL, nextword
from helpers import CUDA_USABLE
from service.server import settings


def parse(argv, env):
    p = argparse.ArgumentParser()
    settings.add_arguments(p)
    return settings.from_args(p.parse_args(argv), environ=env)


def test_flags_override_environment_which_overrides_defaults():
    s = parse(["--grpc-port", "7000"], {"NEXTWORD_GRPC_PORT": "6000", "NEXTWORD_CACHE_SIZE": "9", "NEXTWORD_REFLECTION": "off"})
    assert (s.grpc_port, s.cache_size, s.reflection, s.max_batch) == (7000, 9, False, settings.Settings.max_batch)


def test_bad_values_are_refused():
    with pytest.raises(settings.SettingsError, match="NEXTWORD_MAX_BATCH"):
        parse([], {"NEXTWORD_MAX_BATCH": "lots"})
    with pytest.raises(settings.SettingsError, match="cache_size must be at least 1"):
        parse(["--cache-size", "0"], {})


def test_a_bare_boolean_flag_means_true_and_words_are_read():
    assert parse(["--int8"], {}).int8 is True
    assert parse(["--int8", "false"], {}).int8 is False
    assert parse([], {"NEXTWORD_INT8": "yes"}).int8 is True
    with pytest.raises(SystemExit):
        parse(["--reflection", "maybe"], {})


@pytest.mark.parametrize("flags, message", [
    (["--grpc-port", "99999"], "grpc_port must be between 0 and 65535"),
    (["--metrics-port", "-2"], "metrics_port must be between -1 and 65535"),
    (["--threads", "-1"], "must not be negative"),
    (["--tls-cert", "c.pem"], "tls_cert and tls_key go together"),
    (["--tls-client-ca", "ca.pem"], "needs tls_cert and tls_key"),
])
def test_out_of_range_settings_are_refused(flags, message):
    with pytest.raises(settings.SettingsError, match=message):
        parse(flags, {})


def test_the_default_model_dir_is_the_shipped_model():
    assert parse([], {}).model_dir == str(SHIPPED_MODEL)


@pytest.mark.parametrize("flags, message", [
    (["--model-dir", "/no/such/model"], "model directory not found: /no/such/model"),
    (["--model-dir", "tests"], "has no model.onnx"),
    (["--provider", "cuda"], "model.int8.onnx cannot run on provider cuda: it is made for the CPU's integer kernels"
                             if CUDA_USABLE else "provider cuda (CUDAExecutionProvider) is not available"),
    (["--metrics-port", "BUSY"], "cannot serve metrics on 127.0.0.1"),
    (["--grpc-port", "BUSY"], "cannot listen on 127.0.0.1"),
    (["--model-dir", "BROKEN"], "onnxruntime cannot load"),
])
def test_startup_mistakes_are_one_line_errors(flags, message, busy_port, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(SHIPPED_MODEL, broken)
    (broken / "model.onnx").write_bytes(b"\x08\x07garbage, not a protobuf")
    flags = [{"BUSY": str(busy_port), "BROKEN": str(broken)}.get(f, f) for f in flags]
    proc = nextword("serve", "--host", "127.0.0.1", "--metrics-host", "127.0.0.1", "--grpc-port", "0",
                    "--metrics-port", "0", *flags, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_the_readme_settings_table_is_the_settings():
    """One home for each setting's doc and default: the fields; README's table is made from
    them (python -m service.server.settings) and must not drift."""
    from conftest import ROOT
    assert settings.markdown_table() in (ROOT / "README.md").read_text()
