"""Fast tests of image/run.sh, the serving image's entrypoint: every bad value of the environment
contract fails with one line naming the variable, and good values map onto the expected
`infinity_emb v2` command (read back from its --print-command dry run). The real server behind
that command is exercised in tests/integration/test_images.py.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

RUN_SH = Path(__file__).resolve().parents[2] / "image" / "run.sh"
BASH = shutil.which("bash") or "/bin/bash"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    (d / "config.json").write_text("{}")
    return d


@pytest.fixture
def base_env(tmp_path: Path, model_dir: Path) -> dict[str, str]:
    """A minimal valid environment; no variable of the host leaks in except PATH."""
    return {
        "PATH": os.environ["PATH"],
        "MODEL_SERVE_NAME": "all-minilm-l6-v2",
        "MODEL_DIR": str(model_dir),
        "INFINITY_HOME": str(tmp_path / "home"),
    }


def run_sh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(RUN_SH), *args], env=env, capture_output=True, text=True, timeout=30
    )


def dry_run(env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(exported env, infinity_emb argv) of the command run.sh would exec."""
    proc = run_sh(env, "--print-command")
    assert proc.returncode == 0, proc.stderr
    words = shlex.split(proc.stdout)
    assert words[0] == "env"
    i = next(n for n, w in enumerate(words[1:], 1) if not re.match(r"^[A-Z_]+=", w))
    exported = dict(w.split("=", 1) for w in words[1:i])
    return exported, words[i:]


def flag(argv: list[str], name: str) -> str:
    assert argv.count(name) == 1, f"{name} expected once in {argv}"
    return argv[argv.index(name) + 1]


# --- bad inputs: exit 2, one line, naming the variable --------------------------------------

BAD = [
    ({"MODEL_SERVE_NAME": ""}, "MODEL_SERVE_NAME"),
    ({"MODEL_SERVE_NAME": "has space"}, "MODEL_SERVE_NAME"),
    ({"BATCH_SIZE": "abc"}, "BATCH_SIZE"),
    ({"BATCH_SIZE": "0"}, "BATCH_SIZE"),
    ({"BATCH_SIZE": "4097"}, "BATCH_SIZE"),
    ({"BATCH_SIZE": "-1"}, "BATCH_SIZE"),
    ({"BATCH_SIZE": "99999999999999999999"}, "BATCH_SIZE"),
    ({"URL_PRE_FIX": "v1"}, "URL_PRE_FIX"),
    ({"URL_PRE_FIX": "/v1/"}, "URL_PRE_FIX"),
    ({"URL_PRE_FIX": "/"}, "URL_PRE_FIX"),
    ({"URL_PRE_FIX": "/v1 x"}, "URL_PRE_FIX"),
    ({"TRUST_REMOTE_CODE": "yes"}, "TRUST_REMOTE_CODE"),
    ({"ENGINE": "onnx"}, "ENGINE"),
    ({"ENGINE": "neuron"}, "ENGINE"),
    ({"DTYPE": "float64"}, "DTYPE"),
    # NB: infinity 0.0.78's PoolingMethod is mean|cls|auto only; "last" does not exist there.
    ({"POOLING": "last"}, "POOLING"),
    ({"POOLING": "max"}, "POOLING"),
    ({"PORT": "http"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"HOST": "a b"}, "HOST"),
    ({"REVISION": "main;rm"}, "REVISION"),
    ({"MODEL_DIR": "/nonexistent/models"}, "MODEL_DIR"),
    ({"MODEL_DIR": "/nonexistent/models", "STORAGE_URI": "s3://bucket/x"}, "MODEL_DIR"),
    ({"MODEL_DIR": "/nonexistent/models", "STORAGE_URI": "hf://just-a-name"}, "STORAGE_URI"),
    (
        {"MODEL_DIR": "/nonexistent", "STORAGE_URI": "hf://org/m@v1", "REVISION": "v2"},
        "REVISION",
    ),
    ({"ARG": "--device 'cpu"}, "ARG"),
    ({"ARG": "--port 9000"}, "PORT"),
    ({"ARG": "--model-id=/elsewhere"}, "MODEL_DIR"),
    ({"ARG": "--served-model-name x"}, "MODEL_SERVE_NAME"),
    ({"ARG": "--trust-remote-code"}, "TRUST_REMOTE_CODE"),
    ({"INFINITY_HOME": "/proc/not-writable"}, "INFINITY_HOME"),
    ({"HF_HOME": "/proc/not-writable"}, "HF_HOME"),
    ({"ENGINE": "optimum", "INFINITY_AVAILABLE_ENGINES": "torch ctranslate2"}, "ENGINE"),
    ({"RUN_SH_DRY_RUN": "yes"}, "RUN_SH_DRY_RUN"),
    ({"INFINITY_API_KEY": ""}, "INFINITY_API_KEY"),
    ({"INFINITY_API_KEY": "s3cret\n"}, "INFINITY_API_KEY"),
    ({"INFINITY_API_KEY": "two words"}, "INFINITY_API_KEY"),
    ({"ARG": "--api-key s3cret"}, "INFINITY_API_KEY"),
]


@pytest.mark.parametrize(("overrides", "variable"), BAD, ids=[repr(o) for o, _ in BAD])
def test_bad_value_exits_with_one_line_naming_the_variable(
    base_env: dict[str, str], overrides: dict[str, str], variable: str
) -> None:
    proc = run_sh({**base_env, **overrides}, "--print-command")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("run.sh: ")
    assert variable in lines[0]
    # Every message says how to fix it, not only what is wrong.
    assert any(
        word in lines[0]
        for word in ("set ", "use ", "mount ", "remove ", "fix ", "drop ", "store ")
    )
    assert "s3cret" not in proc.stderr  # an API key is never echoed


def test_api_key_stays_in_the_environment_never_on_the_command_line(
    base_env: dict[str, str],
) -> None:
    proc = run_sh({**base_env, "INFINITY_API_KEY": "s3cret-Key_1"}, "--print-command")
    assert proc.returncode == 0, proc.stderr
    # infinity reads INFINITY_API_KEY itself (its --api-key default), so argv (visible in ps)
    # and the printed command never carry the key.
    assert "s3cret" not in proc.stdout and "--api-key" not in proc.stdout


def test_missing_serve_name_when_unset(base_env: dict[str, str]) -> None:
    env = {k: v for k, v in base_env.items() if k != "MODEL_SERVE_NAME"}
    proc = run_sh(env)
    assert proc.returncode == 2
    assert "MODEL_SERVE_NAME is not set" in proc.stderr


def test_model_dir_without_model_files_names_model_dir(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_sh({**base_env, "MODEL_DIR": str(empty)}, "--print-command")
    assert proc.returncode == 2
    assert "MODEL_DIR" in proc.stderr and "no model files" in proc.stderr


def test_unknown_argument_is_rejected(base_env: dict[str, str]) -> None:
    proc = run_sh(base_env, "--model-id", "x")
    assert proc.returncode == 2
    assert "unknown argument" in proc.stderr


# --- good inputs: the command that would be exec'd ------------------------------------------


def test_defaults(base_env: dict[str, str], model_dir: Path, tmp_path: Path) -> None:
    exported, argv = dry_run(base_env)
    assert argv[:2] == ["infinity_emb", "v2"]
    assert flag(argv, "--model-id") == str(model_dir)
    assert flag(argv, "--served-model-name") == "all-minilm-l6-v2"
    assert flag(argv, "--batch-size") == "32"
    assert flag(argv, "--url-prefix") == "/v1"
    assert flag(argv, "--engine") == "torch"
    assert flag(argv, "--dtype") == "auto"
    assert flag(argv, "--pooling-method") == "auto"
    assert flag(argv, "--port") == "8080"
    assert flag(argv, "--host") == "0.0.0.0"
    # NB: infinity's own default is trust-remote-code ON; the contract's default is off.
    assert "--no-trust-remote-code" in argv and "--trust-remote-code" not in argv
    assert "--revision" not in argv
    assert exported["DO_NOT_TRACK"] == "1"
    assert exported["INFINITY_ANONYMOUS_USAGE_STATS"] == "false"
    assert exported["HF_HUB_OFFLINE"] == "1"
    assert exported["INFINITY_HOME"] == str(tmp_path / "home")
    assert exported["HF_HOME"] == str(tmp_path / "home" / "hf")
    assert (tmp_path / "home" / "hf").is_dir()


def test_serve_py_with_the_venv_python_is_the_launcher(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    # With a venv on PATH (infinity_emb beside its python), run.sh starts infinity through
    # image/serve.py, which adds the unprefixed OpenAI routes.
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "infinity_emb").write_text("#!/bin/sh\nexit 99\n")
    (bin_dir / "infinity_emb").chmod(0o755)
    (bin_dir / "python").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    _, argv = dry_run({**base_env, "PATH": f"{bin_dir}:{base_env['PATH']}"})
    assert argv[:3] == [str(bin_dir / "python"), str(RUN_SH.parent / "serve.py"), "v2"]


def test_dry_run_env_var_equals_flag(base_env: dict[str, str]) -> None:
    proc = run_sh({**base_env, "RUN_SH_DRY_RUN": "1"})
    assert proc.returncode == 0
    assert proc.stdout == run_sh(base_env, "--print-command").stdout


def test_every_setting_maps_to_its_flag(base_env: dict[str, str]) -> None:
    _, argv = dry_run(
        {
            **base_env,
            "MODEL_SERVE_NAME": "team/minilm:v2",
            "BATCH_SIZE": "064",
            "URL_PRE_FIX": "/api/v2",
            "TRUST_REMOTE_CODE": "True",
            "ENGINE": "CTranslate2",
            "DTYPE": "float16",
            "POOLING": "mean",
            "REVISION": "refs/pr/1",
            "PORT": "7997",
            "HOST": "127.0.0.1",
        }
    )
    assert flag(argv, "--served-model-name") == "team/minilm:v2"
    assert flag(argv, "--batch-size") == "64"
    assert flag(argv, "--url-prefix") == "/api/v2"
    assert flag(argv, "--redirect-slash") == "/api/v2/docs"
    assert "--trust-remote-code" in argv and "--no-trust-remote-code" not in argv
    assert flag(argv, "--engine") == "ctranslate2"
    assert flag(argv, "--dtype") == "float16"
    assert flag(argv, "--pooling-method") == "mean"
    assert flag(argv, "--revision") == "refs/pr/1"
    assert flag(argv, "--port") == "7997"
    assert flag(argv, "--host") == "127.0.0.1"


@pytest.mark.parametrize("value", ["1", "4096"])
def test_batch_size_bounds_are_inclusive(base_env: dict[str, str], value: str) -> None:
    _, argv = dry_run({**base_env, "BATCH_SIZE": value})
    assert flag(argv, "--batch-size") == value


def test_empty_values_mean_defaults(base_env: dict[str, str]) -> None:
    # NB: an unbound template parameter renders as an empty string; it must mean "default".
    blanks = dict.fromkeys(
        ["BATCH_SIZE", "URL_PRE_FIX", "ENGINE", "DTYPE", "POOLING", "REVISION", "ARG", "PORT"], ""
    )
    _, argv = dry_run({**base_env, **blanks})
    _, default_argv = dry_run(base_env)
    assert argv == default_argv


def test_hf_storage_uri_is_served_online_when_model_dir_is_empty(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    exported, argv = dry_run(
        {**base_env, "MODEL_DIR": str(empty), "STORAGE_URI": "hf://BAAI/bge-small-en-v1.5@main"}
    )
    assert flag(argv, "--model-id") == "BAAI/bge-small-en-v1.5"
    assert flag(argv, "--revision") == "main"
    assert "HF_HUB_OFFLINE" not in exported


def test_local_model_wins_over_hf_storage_uri(base_env: dict[str, str], model_dir: Path) -> None:
    exported, argv = dry_run({**base_env, "STORAGE_URI": "hf://BAAI/bge-small-en-v1.5"})
    assert flag(argv, "--model-id") == str(model_dir)
    assert exported["HF_HUB_OFFLINE"] == "1"


def test_modules_json_alone_counts_as_a_model(base_env: dict[str, str], tmp_path: Path) -> None:
    d = tmp_path / "st"
    d.mkdir()
    (d / "modules.json").write_text("[]")
    _, argv = dry_run({**base_env, "MODEL_DIR": str(d)})
    assert flag(argv, "--model-id") == str(d)


def test_arg_is_split_like_a_shell_and_never_executed(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    _, argv = dry_run(
        {**base_env, "ARG": f"--device cpu --compile 'two words' --log-level $(touch {marker})"}
    )
    assert argv[-7:] == [
        *("--device", "cpu", "--compile", "two words", "--log-level"),
        *("$(touch", f"{marker})"),
    ]
    assert not marker.exists()


def test_arg_flags_come_after_the_managed_ones(base_env: dict[str, str]) -> None:
    _, argv = dry_run({**base_env, "ARG": "--no-model-warmup"})
    assert argv[-1] == "--no-model-warmup"


# --- real mode: exec of infinity_emb from PATH ----------------------------------------------


def test_missing_infinity_emb_on_path_is_a_clear_error(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mkdir", "tr"):  # the only external commands run.sh needs before exec
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    proc = run_sh({**base_env, "PATH": str(bin_dir)})
    assert proc.returncode == 2
    assert "infinity_emb is not on PATH" in proc.stderr


def test_execs_infinity_emb_with_the_printed_command(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    # A stand-in infinity_emb that records argv and the environment it was exec'd with: the real
    # server runs in tests/integration/test_images.py; this checks run.sh's exec wiring only.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "record"
    fake = bin_dir / "infinity_emb"
    fake.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}.argv\n'
        f"echo $$ > {record}.pid\nenv > {record}.env\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**base_env, "PATH": f"{bin_dir}:{base_env['PATH']}"}
    _, expected_argv = dry_run(env)
    proc = subprocess.Popen([BASH, str(RUN_SH)], env=env, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert record.with_suffix(".argv").read_text().splitlines() == expected_argv[1:]
    # exec, not a child: the server gets run.sh's PID, so SIGTERM from the kubelet reaches it.
    assert int(record.with_suffix(".pid").read_text()) == proc.pid
    child_env = dict(
        line.split("=", 1)
        for line in record.with_suffix(".env").read_text().splitlines()
        if "=" in line
    )
    assert child_env["DO_NOT_TRACK"] == "1"
    assert child_env["HF_HUB_OFFLINE"] == "1"
    assert child_env["INFINITY_HOME"] == base_env["INFINITY_HOME"]
    assert "serving" in err and "all-minilm-l6-v2" in err
