#!/usr/bin/env python3
"""Set up and run the shop on this machine with nothing but Python 3.11+.

    python3 dev.py           set up (venv, packages, database, demo data, staff login) and start
                             the web server and the workers, in offline test mode; Ctrl-C stops all
    python3 dev.py test      run the whole test suite (extra arguments go to pytest)

Only the standard library is used here: this script is what installs everything else.
"""

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAFF_EMAIL = "staff@example.com"
WORKERS = [["deliver_notifications"], ["send_key_emails"]]
TEST_MODE_WORKERS = [["deliver_test_events"]]
# Runs only with the setting on (a worker that exits at once would stop the others).
FRAUD_REFUND_WORKERS = [["refund_fraud_warnings"]]


def say(message: str) -> None:
    print(f"\033[1m==> {message}\033[0m", flush=True)


def ensure_packages() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  (this script is what users run first)
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        say("Creating the virtual environment in .venv")
        venv.create(VENV, with_pip=True)
    stamp = VENV / ".installed"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    say("Installing packages (once; again only when pyproject.toml changes)")
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    import tomllib  # 3.11+

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    subprocess.run(
        [*pip, *project["dependencies"], *project["optional-dependencies"]["dev"]], check=True
    )
    stamp.write_text(wanted)


def manage(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PYTHON), "manage.py", *args], cwd=ROOT, env=env, check=True, **kwargs
    )


def dev_env() -> dict:
    env = dict(os.environ)
    env.setdefault("DEBUG", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def reset_staff_password(env: dict) -> str:
    password = secrets.token_urlsafe(12)
    code = (
        "from accounts.models import User\n"
        f"u = User.objects.filter(email={STAFF_EMAIL!r}).first() or "
        f"User.objects.create_superuser({STAFF_EMAIL!r})\n"
        f"u.is_staff = u.is_superuser = True\nu.set_password({password!r})\nu.save()\n"
    )
    manage("shell", "-c", code, env=env)
    return password


def modes(env: dict) -> dict:
    """What the settings (and .env) decide: `test_mode` (the offline test gateway) and
    `staff_2fa_required`. `payment_mode` prints nothing but its JSON answer."""
    result = manage("payment_mode", env=env, capture_output=True, text=True)
    return json.loads(result.stdout)


def is_test_mode(env: dict) -> bool:
    return modes(env)["test_mode"] is True


def refunds_fraud_warnings(env: dict[str, str]) -> bool:
    return env.get("STRIPE_REFUND_ON_FRAUD_WARNING", "").lower() in ("1", "true", "yes", "on")


def start() -> None:
    ensure_packages()
    env = dev_env()
    port = env.get("PORT", "8000")
    env.setdefault("SITE_URL", f"http://localhost:{port}")
    say("Preparing the database (SQLite unless DATABASE_URL says otherwise)")
    manage("migrate", "--noinput", "-v0", env=env)
    manage("seed_demo", env=env)
    password = reset_staff_password(env)
    decided = modes(env)
    test_mode = decided["test_mode"] is True
    processes = [
        subprocess.Popen([str(PYTHON), "manage.py", *worker], cwd=ROOT, env=env)
        for worker in WORKERS
        + (TEST_MODE_WORKERS if test_mode else [])
        + (FRAUD_REFUND_WORKERS if refunds_fraud_warnings(env) else [])
    ]
    processes.append(
        subprocess.Popen(
            [str(PYTHON), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
        )
    )
    wait_until_answering(port)
    print(
        f"\n  The shop:     {env['SITE_URL']}/\n"
        f"  Staff (/mgmt): {env['SITE_URL']}/{env.get('MGMT_PATH', 'mgmt').strip('/')}/\n"
        f"  Django admin: {env['SITE_URL']}/admin/\n"
        f"  Staff login:  {STAFF_EMAIL} / {password}\n"
        + (
            "  Staff also give a code from an authenticator app (STAFF_2FA_REQUIRED): at the first\n"
            "  sign-in, a code emailed to the staff address (printed below when EMAIL_URL is unset),\n"
            "  then a QR code to scan once; every sign-in then asks for the app's code.\n"
            if decided["staff_2fa_required"]
            else "  Staff sign in with the password alone: the second factor is off in test mode\n"
            "  (STAFF_2FA_REQUIRED=1 turns it on: an emailed code, then a QR code to scan, at the\n"
            "  first sign-in).\n"
        )
        + (
            "  Payments are in TEST MODE (no Stripe key): Buy Now opens a local test checkout.\n"
            if test_mode
            else "  Payments go to Stripe (STRIPE_SECRET_KEY is set): forward its events with\n"
            f"  stripe listen --forward-to localhost:{port}/stripe/webhook/\n"
        )
        + "  Emails (with the license keys) are printed here; Discord messages are previewed on\n"
        "  /mgmt (Notifications) until DISCORD_WEBHOOK_URL is set.\n"
        "  Ctrl-C stops the web server and the workers.\n",
        flush=True,
    )
    stop = lambda *_: [p.terminate() for p in processes if p.poll() is None]  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    stop()
    for process in processes:
        process.wait(timeout=30)


def wait_until_answering(port: str, timeout: float = 30) -> None:
    """Until the web server answers (any status), so the addresses printed next work."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            return
        except urllib.error.HTTPError:  # 503 while a worker starts: the server answers
            return
        except OSError:
            time.sleep(0.2)


def test(args: list[str]) -> None:
    ensure_packages()
    os.chdir(ROOT)
    os.execv(str(PYTHON), [str(PYTHON), "-m", "pytest", *args])


if __name__ == "__main__":
    if sys.argv[1:2] == ["test"]:
        test(sys.argv[2:])
    elif len(sys.argv) == 1:
        try:
            start()
        except subprocess.CalledProcessError:  # manage.py said why, above
            sys.exit(
                "\nThe shop did not start: see the message above (a setting, in .env or "
                "the environment, most likely)."
            )
    else:
        sys.exit(__doc__)
