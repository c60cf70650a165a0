"""The kaskad command as a user runs it: db upgrade, token create, serve's bootstrap token, worker."""

import os
import subprocess
import sys

import httpx

from kaskad.testing.servers import free_port, wait_port

KASKAD = [sys.executable, "-m", "kaskad"]


def run(args, home, **env):
    e = {**os.environ, "KASKAD_HOME": str(home), **env}
    return subprocess.run(KASKAD + args, env=e, capture_output=True, text=True, timeout=120)


def test_db_upgrade_and_token_create(tmp_path):
    r = run(["db", "upgrade"], tmp_path)
    assert r.returncode == 0 and "newest schema" in r.stdout
    r = run(["token", "create", "--role", "integrator", "--name", "till"], tmp_path)
    token = r.stdout.strip()
    assert r.returncode == 0 and token.startswith("ksk_")
    assert run(["token", "create", "--role", "owner"], tmp_path).returncode == 2  # argparse names the choices


def test_worker_needs_a_broker_url_and_says_so(tmp_path):
    r = run(["worker"], tmp_path)
    assert r.returncode == 2 and "KASKAD_BROKER_URL" in r.stderr


def test_serve_prints_a_bootstrap_token_once_and_keeps_it(tmp_path):
    def serve():
        port = free_port()
        proc = subprocess.Popen(
            KASKAD + ["serve", "--port", str(port)],
            env={**os.environ, "KASKAD_HOME": str(tmp_path)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        wait_port(port, timeout=60)
        return proc, port

    proc, port = serve()
    try:
        token = (tmp_path / "admin-token").read_text().strip()
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/catalog", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert token in out
    proc, port = serve()  # second start: no new token printed, the kept one still works
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/catalog", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "ksk_" not in out and "shown once" not in out


def test_admin_token_from_the_environment(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        KASKAD + ["serve", "--port", str(port)],
        env={**os.environ, "KASKAD_HOME": str(tmp_path), "KASKAD_ADMIN_TOKEN": "my-own-admin-secret-0001"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, timeout=60)
        ok = httpx.get(f"http://127.0.0.1:{port}/api/v1/catalog", headers={"Authorization": "Bearer my-own-admin-secret-0001"})
        assert ok.status_code == 200
        assert not (tmp_path / "admin-token").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_workers_need_postgresql(tmp_path):
    r = run(["serve", "--workers", "2", "--port", str(free_port())], tmp_path)
    assert r.returncode == 2 and "KASKAD_DATABASE_URL" in r.stderr


def test_serve_with_worker_processes_on_postgresql(tmp_path, pg_url):
    port = free_port()
    proc = subprocess.Popen(
        KASKAD + ["serve", "--port", str(port), "--workers", "2"],
        env={**os.environ, "KASKAD_HOME": str(tmp_path), "KASKAD_DATABASE_URL": pg_url,
             "KASKAD_ADMIN_TOKEN": "admin-token-for-workers-0001"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_port(port, timeout=60)
        auth = {"Authorization": "Bearer admin-token-for-workers-0001"}
        # a new connection each time: whichever process accepts it answers
        for _ in range(6):
            assert httpx.get(f"http://127.0.0.1:{port}/api/v1/catalog", headers=auth).status_code == 200
        contact = httpx.post(f"http://127.0.0.1:{port}/api/v1/contacts", headers=auth,
                             json={"contacts": [{"external_id": "w1"}]})
        assert contact.status_code in (200, 201), contact.text
        quote = httpx.post(f"http://127.0.0.1:{port}/api/v1/checkout/quote", headers=auth,
                           json={"contact": "w1", "items": [{"sku": "A", "price": "10"}]})
        assert quote.status_code == 200 and quote.json()["subtotal"] == "10.00"
    finally:
        proc.terminate()
        err = proc.communicate(timeout=30)[1]
    assert "2 worker processes" in err
