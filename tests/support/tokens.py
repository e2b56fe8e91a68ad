"""PKCS#11 tokens for tests, each in a temporary folder: SoftHSM2, and a TPM 2.0 (swtpm) seen
through tpm2-pkcs11. Missing parts skip on a workstation and fail in CI (require_real_part).

swtpm listens on two free TCP ports (commands on P, control on P+1: the TCTI
``swtpm:host=127.0.0.1,port=P`` needs them adjacent). ``swtpm --daemon`` returns once both
sockets listen, so no test waits on time. There is no resource manager between the module and
swtpm (a Pi uses the kernel's /dev/tpmrm0), so tpm2_ptool, which leaves objects loaded between
its tool calls, runs out of the emulated TPM's three object slots; the token is therefore
initialised through the module itself (C_InitToken / C_InitPIN, by OpenSC's pkcs11-tool).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.signing.settings import Pkcs11Settings
from tests.conftest import require_real_part
from tests.support.gateway import wait_until

SOFTHSM_MODULES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
)
TPM2_MODULES = (
    Path("/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so"),
    Path("/usr/lib/aarch64-linux-gnu/pkcs11/libtpm2_pkcs11.so"),
    Path("/usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1"),
    Path("/usr/lib/aarch64-linux-gnu/libtpm2_pkcs11.so.1"),
)
USER_PIN = "271828"
SO_PIN = "31415926"
TOKEN_LABEL = "edge-test"


def first_existing(paths: tuple[Path, ...]) -> Path | None:
    """The first path that exists."""
    return next((p for p in paths if p.exists()), None)


@dataclass
class Token:
    """An initialised token: its module, label, PIN file and the environment the module reads."""

    kind: str
    module: Path
    label: str
    pin_file: Path
    env: dict[str, str] = field(default_factory=dict)

    def settings(self, key_label: str = "station", **changes: Any) -> Pkcs11Settings:
        """The config section for a key of this token."""
        values: dict[str, Any] = {
            "module": self.module,
            "token_label": self.label,
            "key_label": key_label,
            "pin_file": self.pin_file,
        }
        return Pkcs11Settings(**{**values, **changes})

    def plain(self, key_label: str = "station") -> dict[str, str]:
        """The same section as plain config data (for TOML files)."""
        return {
            "module": str(self.module),
            "token_label": self.label,
            "key_label": key_label,
            "pin_file": str(self.pin_file),
        }

    def process_env(self) -> dict[str, str]:
        """os.environ plus what the module needs (for subprocesses)."""
        return {**os.environ, **self.env}

    def tool(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run pkcs11-tool on this token's module."""
        return subprocess.run(
            ["pkcs11-tool", "--module", str(self.module), *args],
            env=self.process_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def write_pin(path: Path, pin: str = USER_PIN) -> Path:
    """An owner-only PIN file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pin + "\n")
    return path


def softhsm_token(root: Path, label: str = TOKEN_LABEL) -> Token:
    """A SoftHSM2 token in ``root`` (its own softhsm2.conf and token folder)."""
    module = first_existing(SOFTHSM_MODULES)
    util = shutil.which("softhsm2-util")
    require_real_part(module is not None and util is not None, "SoftHSM2 (Debian softhsm2)")
    assert module is not None and util is not None
    (root / "tokens").mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    env = {"SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", USER_PIN],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Token("softhsm2", module, label, write_pin(root / "pin"), env)


def _adjacent_free_ports() -> int:
    """P with P and P+1 free right now on 127.0.0.1."""
    while True:
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a daemon's parent may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@dataclass
class Swtpm:
    """A swtpm TPM 2.0 emulator on a free port pair, its state in a temporary folder."""

    root: Path
    port: int = 0
    pid: int = 0
    ca_file: Path | None = None

    @property
    def tcti(self) -> str:
        """The TCTI string for tpm2-tools and tpm2-pkcs11."""
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def manufacture(self) -> Path:
        """Before start: give the TPM an EK and an EK certificate from a local test CA (swtpm_setup
        with swtpm_localca, its config in root); returns the CA file (root and issuer PEM)."""
        require_real_part(
            shutil.which("swtpm_setup") is not None and shutil.which("swtpm_localca") is not None,
            "swtpm_setup and swtpm_localca (Debian swtpm-tools)",
        )
        ca, state = self.root / "localca", self.root / "state"
        ca.mkdir(parents=True)
        state.mkdir(parents=True, exist_ok=True)
        (self.root / "localca.conf").write_text(
            f"statedir = {ca}\nsigningkey = {ca}/signkey.pem\n"
            f"issuercert = {ca}/issuercert.pem\ncertserial = {ca}/certserial\n"
        )
        (self.root / "localca.options").write_text(
            "--platform-manufacturer EdgeTest\n--platform-version 2.1\n--platform-model swtpm\n"
        )
        (self.root / "swtpm_setup.conf").write_text(
            "create_certs_tool = /usr/bin/swtpm_localca\n"
            f"create_certs_tool_config = {self.root / 'localca.conf'}\n"
            f"create_certs_tool_options = {self.root / 'localca.options'}\n"
            "active_pcr_banks = sha256\n"
        )
        done = subprocess.run(
            [
                "swtpm_setup", "--tpm2", "--tpmstate", str(state), "--create-ek-cert",
                "--config", str(self.root / "swtpm_setup.conf"), "--pcr-banks", "sha256",
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        bundle = self.root / "tpm-ca.pem"
        bundle.write_text(
            (ca / "swtpm-localca-rootca-cert.pem").read_text() + (ca / "issuercert.pem").read_text()
        )
        return bundle

    def start(self) -> None:
        """Start the daemon (retrying when another process takes the ports first)."""
        (self.root / "state").mkdir(parents=True, exist_ok=True)
        pid_file = self.root / "swtpm.pid"
        for _ in range(20):
            port = _adjacent_free_ports()
            pid_file.unlink(missing_ok=True)
            done = subprocess.run(
                [
                    "swtpm", "socket", "--tpm2", "--daemon",
                    "--tpmstate", f"dir={self.root / 'state'}",
                    "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
                    "--ctrl", f"type=tcp,port={port + 1},bindaddr=127.0.0.1",
                    "--flags", "not-need-init",
                    "--pid", f"file={pid_file}",
                    "--log", f"file={self.root / 'swtpm.log'}",
                ],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            if done.returncode == 0:
                self.port, self.pid = port, int(pid_file.read_text())
                break
        else:
            raise RuntimeError(f"swtpm did not start: {done.stderr}")
        env = {**os.environ, "TPM2TOOLS_TCTI": self.tcti}
        subprocess.run(["tpm2_startup", "-c"], env=env, check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        """SIGTERM and wait until the process is gone."""
        if self.pid and _alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            assert wait_until(lambda: not _alive(self.pid), 30), "swtpm did not stop"


def swtpm_token(root: Path, tpm: Swtpm, label: str = TOKEN_LABEL) -> Token:
    """A tpm2-pkcs11 token in the store ``root``, backed by the running ``tpm``."""
    module = first_existing(TPM2_MODULES)
    require_real_part(
        module is not None and shutil.which("pkcs11-tool") is not None,
        "tpm2-pkcs11 (Debian libtpm2-pkcs11-1) and pkcs11-tool (Debian opensc)",
    )
    assert module is not None
    (root / "store").mkdir(parents=True)
    env = {
        "TPM2_PKCS11_TCTI": tpm.tcti,
        "TPM2_PKCS11_STORE": str(root / "store"),
        "TPM2_PKCS11_LOG_LEVEL": "0",
    }
    token = Token("tpm2", module, label, write_pin(root / "pin"), env)
    init = token.tool("--slot-index", "0", "--init-token", "--label", label, "--so-pin", SO_PIN)
    assert init.returncode == 0, init.stderr
    pin = token.tool(
        "--token-label", label, "--login", "--login-type", "so", "--so-pin", SO_PIN,
        "--init-pin", "--pin", USER_PIN,
    )  # fmt: skip
    assert pin.returncode == 0, pin.stderr
    return token


def swtpm_available() -> bool:
    """swtpm, tpm2-tools and the tpm2-pkcs11 module are installed."""
    return (
        shutil.which("swtpm") is not None
        and shutil.which("tpm2_startup") is not None
        and first_existing(TPM2_MODULES) is not None
        and shutil.which("pkcs11-tool") is not None
    )


@contextlib.contextmanager
def running_swtpm(root: Path, *, manufactured: bool = False) -> Iterator[Swtpm]:
    """A started swtpm, stopped on exit; ``manufactured``: with an EK certificate
    (``tpm.ca_file`` is then its CA bundle)."""
    require_real_part(
        swtpm_available(),
        "swtpm + tpm2-tools + tpm2-pkcs11 + pkcs11-tool (Debian swtpm swtpm-tools tpm2-tools "
        "libtpm2-pkcs11-1 opensc)",
    )
    tpm = Swtpm(root)
    if manufactured:
        tpm.ca_file = tpm.manufacture()
    tpm.start()
    try:
        yield tpm
    finally:
        tpm.stop()
