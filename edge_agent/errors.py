"""Exception tree of the edge agent.

Every error raised on purpose by the agent derives from :class:`EdgeAgentError`. Subclasses mix
in the matching stdlib type where one exists (``BusTimeoutError(BmsError, TimeoutError)``) so
callers that only know the stdlib still catch them, and they carry the context that explains
them (a config key path, a raw frame, a register address, a byte offset).

Errors from lower libraries (python-can, pymodbus, paho-mqtt, OpenCV, sqlite3, cryptography) are
translated into this tree at the seam where they occur.

Tree::

    EdgeAgentError
    ├── ConfigError(ValueError)             bad configuration file, flag or profile; .key_path
    │   ├── ProfileError                    pack profile invalid
    │   └── BmsBackendError(ImportError)    a registered BMS method cannot be loaded; .method
    ├── CodeError(ValueError)               pack code / passport id / GS1 / 15434 parsing; .position
    ├── SigningError
    │   ├── KeyFileError(OSError)           key missing, unreadable, unsafe permissions
    │   ├── TokenError                      PKCS#11 token problems; .module, .token, .key_label
    │   │   ├── TokenModuleError(OSError)       module missing or not a PKCS#11 library
    │   │   ├── TokenNotFoundError(LookupError) no token with that label (or no slot at all)
    │   │   ├── TokenPinError(PermissionError)  PIN source unsafe or missing, PIN refused, locked
    │   │   ├── TokenKeyError(LookupError)      key label missing, ambiguous, or not P-256
    │   │   └── TpmError                        a TPM command failed (attestation); .rc
    │   └── VerificationError(ValueError)   COSE_Sign1 rejected; .reason (short, stable token)
    │       ├── TrustStoreError             unknown, revoked or expired key id
    │       └── AttestationError            TPM key attestation evidence does not verify
    ├── BmsError                            any BMS acquisition failure
    │   ├── BusError(BmsError, OSError)     CAN bus / serial port cannot be opened or used
    │   ├── BusTimeoutError(BmsError, TimeoutError)
    │   ├── FrameError(BmsError, ValueError)       malformed frame or message; .frame
    │   ├── TransportError(BmsError)               J1939 TP / ISO-TP abort or sequence error
    │   └── ModbusError(BmsError)                  exception response / CRC / no answer; .address
    │       ├── ModbusTimeoutError(TimeoutError)
    │       ├── SunSpecError(ValueError)           marker missing, chain truncated or looping
    │       └── ModbusConnectionError(ConnectionError)  device unreachable or gone mid-read
    ├── VisionError
    │   ├── CameraError(VisionError, OSError)      capture device missing or failing
    │   └── ImageError(VisionError, ValueError)    undecodable or unusable image bytes
    ├── NodeError
    │   ├── NodeLinkError(NodeError, OSError)      serial/MQTT link to a node lost
    │   ├── NodeProtocolError(NodeError, ValueError)  bad line, CRC mismatch, version mismatch
    │   ├── NodeTimeoutError(NodeError, TimeoutError)
    │   └── NodeCommandError                       node answered a command with ok=false
    ├── StationError                        identification workflow problems
    │   └── ControlSocketAccessError(PermissionError)  control socket refuses this user
    ├── UplinkError
    │   ├── OutboxError                     outbox database problems
    │   │   ├── OutboxFullError             size/age/disk limit reached: refuse new events
    │   │   └── OutboxCorruptError          database unreadable, moved aside; .moved_to
    │   └── PublishError(UplinkError, ConnectionError)
    ├── GatewayError                        site gateway problems
    └── SimulatorError                      a simulator could not start or was misused
"""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Root of every error the agent raises on purpose."""


# --- configuration -------------------------------------------------------------------------


class ConfigError(EdgeAgentError, ValueError):
    """A configuration value is invalid; ``key_path`` names it (``uplink.mqtt.port``)."""

    def __init__(self, message: str, *, key_path: str = "") -> None:
        self.key_path = key_path
        self.problem = message
        super().__init__(f"{key_path}: {message}" if key_path else message)


# --- pack codes -----------------------------------------------------------------------------


class CodeError(EdgeAgentError, ValueError):
    """A pack code or identifier is malformed; ``position`` is 1-based (0 = whole text)."""

    def __init__(self, message: str, *, text: str = "", position: int = 0) -> None:
        self.text = text
        self.position = position
        self.reason = message
        where = f" at position {position}" if position else ""
        super().__init__(f"{message}{where}")


# --- signing --------------------------------------------------------------------------------


class SigningError(EdgeAgentError):
    """Signing or key handling failed."""


class KeyFileError(SigningError, OSError):
    """A key file is missing, unreadable, malformed or readable by others."""


class TokenError(SigningError):
    """A PKCS#11 token could not be used; carries the module, token and key label."""

    def __init__(
        self, message: str, *, module: str = "", token: str = "", key_label: str = ""
    ) -> None:
        self.module = module
        self.token = token
        self.key_label = key_label
        super().__init__(message)


class TokenModuleError(TokenError, OSError):
    """The PKCS#11 module is missing or cannot be loaded and initialised."""


class TokenNotFoundError(TokenError, LookupError):
    """No token with the configured label is present."""


class TokenPinError(TokenError, PermissionError):
    """The PIN source is missing or unsafe, or the token refused the PIN (wrong, locked)."""


class TokenKeyError(TokenError, LookupError):
    """The configured key label is missing, ambiguous or not a P-256 signing key."""


class TpmError(TokenError):
    """A TPM command failed while producing attestation evidence; ``rc`` is the TPM code."""

    def __init__(self, message: str, *, rc: int = 0) -> None:
        self.rc = rc
        super().__init__(message)


class VerificationError(SigningError, ValueError):
    """A COSE_Sign1 message was rejected; ``reason`` is a short stable token."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class RevokedKeyError(ConfigError):
    """Adding a key the trust store has revoked, without saying to un-revoke it."""


class TrustStoreError(VerificationError):
    """The key id is unknown, revoked or outside its validity period."""


class AttestationError(VerificationError):
    """TPM attestation evidence of a station key does not verify; ``reason`` says which check."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.args = (f"attestation refused ({reason}): {detail}",)


# --- BMS ------------------------------------------------------------------------------------


class BmsError(EdgeAgentError):
    """A BMS could not be read (or only partly)."""


class BusError(BmsError, OSError):
    """The CAN bus or serial port cannot be opened or used."""


class BusTimeoutError(BmsError, TimeoutError):
    """Nothing (or not enough) arrived within the configured timeout."""


class FrameError(BmsError, ValueError):
    """A frame or message is malformed; ``frame`` holds the raw bytes when known."""

    def __init__(self, message: str, *, frame: bytes = b"", can_id: int | None = None) -> None:
        self.frame = frame
        self.can_id = can_id
        super().__init__(message)


class TransportError(BmsError):
    """A multi-frame transfer (J1939 TP, ISO-TP) was aborted or broke its sequence."""


class ProfileError(ConfigError):
    """A pack profile file is invalid."""


class BmsBackendError(ConfigError, ImportError):
    """A registered BMS method (built-in or entry point) cannot be loaded or is no BmsSource."""

    def __init__(self, message: str, *, method: str, target: str) -> None:
        self.method = method
        self.target = target  # "module:Class" as registered
        super().__init__(message)


class ModbusError(BmsError):
    """A Modbus request failed; ``address`` and ``exception_code`` when known."""

    def __init__(
        self, message: str, *, address: int | None = None, exception_code: int | None = None
    ) -> None:
        self.address = address
        self.exception_code = exception_code
        super().__init__(message)


class ModbusTimeoutError(ModbusError, TimeoutError):
    """A Modbus device did not answer in time."""


class SunSpecError(ModbusError, ValueError):
    """A SunSpec map is missing, truncated or loops."""


class ModbusConnectionError(ModbusError, ConnectionError):
    """The Modbus device or serial port could not be reached or went away mid-read."""


# --- vision ---------------------------------------------------------------------------------


class VisionError(EdgeAgentError):
    """The label could not be captured or read."""


class CameraError(VisionError, OSError):
    """The capture device is missing or failing."""


class ImageError(VisionError, ValueError):
    """Image bytes are undecodable or unusable."""


class OcrError(VisionError, RuntimeError):
    """The OCR engine is not installed or failed on an image."""


# --- nodes ----------------------------------------------------------------------------------


class NodeError(EdgeAgentError):
    """A MicroPython node could not be reached or misbehaved."""


class NodeLinkError(NodeError, OSError):
    """The link to a node is lost or cannot be opened."""


class NodeProtocolError(NodeError, ValueError):
    """A line from a node is malformed, fails its CRC or speaks another protocol version."""


class NodeTimeoutError(NodeError, TimeoutError):
    """A node did not answer or settle in time."""


class NodeCommandError(NodeError):
    """A node acknowledged a command with ok=false; ``op`` and ``reason`` (node's token)."""

    def __init__(self, op: str, reason: str) -> None:
        self.op = op
        self.reason = reason
        super().__init__(f"node refused {op!r}: {reason}")


# --- station --------------------------------------------------------------------------------


class StationError(EdgeAgentError):
    """The identification workflow cannot proceed."""


class ControlSocketAccessError(StationError, PermissionError):
    """A station service runs, but this user may not use its control socket."""


# --- uplink ---------------------------------------------------------------------------------


class UplinkError(EdgeAgentError):
    """Storing or publishing events failed."""


class OutboxError(UplinkError):
    """The outbox database failed."""


class OutboxFullError(OutboxError):
    """The outbox reached its size, age or disk limit; new events are refused."""


class OutboxCorruptError(OutboxError):
    """The outbox database is unreadable; moved aside to ``moved_to`` (empty: only inspected)."""

    def __init__(self, message: str, *, moved_to: str = "") -> None:
        self.moved_to = moved_to
        super().__init__(message)


class PublishError(UplinkError, ConnectionError):
    """The broker could not be reached or refused a publish."""


# --- gateway and simulators -----------------------------------------------------------------


class GatewayError(EdgeAgentError):
    """The site gateway cannot proceed."""


class IngestError(EdgeAgentError):
    """The ingest cannot store or read records (database, evidence store)."""


class EvidenceStoreError(IngestError, OSError):
    """The evidence store cannot take or give a photo (bucket, credentials, endpoint, disk);
    ``store`` says where, ``sha256`` which photo."""

    def __init__(self, message: str, *, store: str, sha256: str = "") -> None:
        self.store = store
        self.sha256 = sha256
        super().__init__(message)


class DuplicateRowError(IngestError):
    """A bulk insert met a key that is already stored (a redelivery, or another worker)."""


class RecordsQueryError(IngestError, ValueError):
    """A records query or export was malformed (bad code, date, limit, format)."""


class SimulatorError(EdgeAgentError):
    """A simulator could not start or was misused."""


class RecordsOutputError(IngestError, OSError):
    """An export's output could not be written (directory missing, no permission, disk full)."""
