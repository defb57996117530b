"""CLI: `python -m aicore_local serve|up|down`.

`serve` runs the emulator in the foreground. `up` starts it in the background on loopback
(pidfile and log under .local/), seeds it and writes `.local/aicore-service-key.json`; `down` stops
it and every predictor process it started.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

from . import launcher, persistence
from .faults import RUNTIMES

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL = REPO_ROOT / ".local"
DEFAULT_PORT = int(os.environ.get("AICORE_LOCAL_PORT", "8765"))


def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def credentials(data_dir: Path) -> dict[str, str]:
    """Client credentials of this emulator instance, generated once per data dir."""
    path = data_dir / "credentials.json"
    if path.exists():
        creds: dict[str, str] = json.loads(path.read_text())
        return creds
    creds = {
        "clientid": "sb-aicore-local!b1|aicore!b540",
        "clientsecret": secrets.token_urlsafe(24),
    }
    _write_private(path, creds)
    return creds


def service_key(creds: dict[str, str], public_url: str) -> dict[str, Any]:
    return {
        "clientid": creds["clientid"],
        "clientsecret": creds["clientsecret"],
        "url": public_url,
        "identityzone": "aicore-local",
        "identityzoneid": "00000000-0000-4000-8000-000000000000",
        "appname": "aicore-local!b540",
        "serviceurls": {"AI_API_URL": public_url},
    }


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .server import build_app
    from .settings import Settings

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # lightkube's (kserve runtime)
    data_dir = Path(args.data).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if args.reset:
        persistence.state_path(data_dir).unlink(missing_ok=True)
        shutil.rmtree(data_dir / "deployments", ignore_errors=True)
    public_url = args.public_url or f"http://{args.host}:{args.port}"
    creds = credentials(data_dir)
    _write_private(data_dir / "service-key.json", service_key(creds, public_url))
    settings = Settings(
        data_dir=data_dir,
        public_url=public_url,
        client_id=creds["clientid"],
        client_secret=creds["clientsecret"],
        template_dirs=[Path(t).resolve() for t in args.templates],
        runtime=args.runtime,
        kubeconfig=Path(args.kubeconfig).resolve() if args.kubeconfig else None,
        kserve_namespace=args.kserve_namespace,
        infinity_venv=Path(args.infinity_venv) if args.infinity_venv else None,
        entrypoint=Path(args.entrypoint).resolve() if args.entrypoint else None,
        token_lifetime_s=args.token_lifetime,
        state_conflict_status=args.state_conflict_status,
        unknown_s=args.unknown_seconds,
        ready_timeout_s=args.ready_timeout,
        sync_interval_s=args.sync_interval,
    )
    app = build_app(settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    data_dir = Path(args.data).resolve()
    key_path = Path(args.service_key).resolve()
    pidfile = Path(args.pidfile)
    url = f"http://127.0.0.1:{args.port}"
    if pidfile.exists() and launcher.pid_alive(int(pidfile.read_text().strip())):
        print(f"local AI Core already running at {url} (pid {pidfile.read_text().strip()})")
        return 0
    templates = [Path(t) for t in args.templates] or [REPO_ROOT / "manifests" / "aicore"]
    log_path = Path(args.log)
    proc = launcher.start(
        data_dir=data_dir,
        port=args.port,
        log_path=log_path,
        templates=templates,
        runtime=args.runtime,
        extra_args=args.extra,
    )
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(str(proc.pid))
    try:
        launcher.wait_ready(url, proc, log_path, timeout=60)
        key = launcher.read_service_key(data_dir)
        if not args.no_seed:
            launcher.seed(key, data_dir)
    except (launcher.LaunchError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        launcher.stop(proc.pid, data_dir)
        pidfile.unlink(missing_ok=True)
        return 1
    _write_private(key_path, key)
    print(f"local AI Core running at {url} (pid {proc.pid}, log {log_path})")
    print(f"service key: {key_path}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    pidfile = Path(args.pidfile)
    pid = int(pidfile.read_text().strip()) if pidfile.exists() else None
    data = Path(args.data).resolve()
    launcher.stop(pid, data)
    pidfile.unlink(missing_ok=True)
    # NB: the state stays in <data>/state.json (the next start resumes it; `serve --reset`
    # forgets it); the deployments' model copies are made afresh when predictors start again.
    shutil.rmtree(data / "deployments", ignore_errors=True)
    print("local AI Core stopped" if pid else "local AI Core was not running")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aicore_local", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the emulator in the foreground")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument(
        "--public-url", help="AI_API_URL as clients see it (default http://host:port)"
    )
    serve.add_argument("--data", default=str(LOCAL / "aicore"), help="state/object store directory")
    serve.add_argument(
        "--templates", action="append", default=[], help="ServingTemplate directory (repeatable)"
    )
    serve.add_argument("--runtime", choices=RUNTIMES, default="process")
    serve.add_argument(
        "--kubeconfig", help="cluster of the kserve runtime [$KUBECONFIG, else ~/.kube/config]"
    )
    serve.add_argument(
        "--kserve-namespace", default="aicore-local", help="namespace of the kserve runtime"
    )
    serve.add_argument(
        "--infinity-venv", help="default: $INFINITY_VENV or the cache's infinity-venv"
    )
    serve.add_argument(
        "--entrypoint", help="image entrypoint stand-in (default <repo>/image/run.sh)"
    )
    serve.add_argument("--token-lifetime", type=float, default=43199.0, help="seconds")
    serve.add_argument("--state-conflict-status", type=int, choices=[400, 412], default=412)
    serve.add_argument("--unknown-seconds", type=float, default=0.5)
    serve.add_argument("--ready-timeout", type=float, default=600.0)
    serve.add_argument("--sync-interval", type=float, default=30.0)
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--reset",
        action="store_true",
        help="forget the saved state (artifacts, configurations, deployments) and start empty",
    )
    serve.set_defaults(func=cmd_serve)

    up = sub.add_parser("up", help="start in the background, seed, write the service key")
    up.add_argument("--port", type=int, default=DEFAULT_PORT)
    up.add_argument("--data", default=str(LOCAL / "aicore"))
    up.add_argument("--templates", action="append", default=[])
    up.add_argument("--runtime", choices=RUNTIMES, default="process")
    up.add_argument("--service-key", default=str(LOCAL / "aicore-service-key.json"))
    up.add_argument("--no-seed", action="store_true", help="skip the object store seed")
    up.add_argument("--pidfile", default=str(LOCAL / "aicore.pid"))
    up.add_argument("--log", default=str(LOCAL / "logs" / "aicore.log"))
    up.add_argument("--extra", action="append", default=[], help="extra `serve` argument")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop the background emulator and its predictors")
    down.add_argument("--data", default=str(LOCAL / "aicore"))
    down.add_argument("--pidfile", default=str(LOCAL / "aicore.pid"))
    down.set_defaults(func=cmd_down)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
