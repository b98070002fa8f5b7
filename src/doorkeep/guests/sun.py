"""Secure Unique NFC (SUN) of NTAG 424 DNA tags, AES mode, as NXP's
application note AN12196 describes it.

At every tap the tag mirrors into its NDEF URL (1) PICCData: its UID and
its 24-bit read counter, encrypted with the SDM meta read key (AES-128-CBC,
zero IV), and (2) SDMMAC: an AES-CMAC with a session key derived from the
SDM file read key, the UID and the counter (SV2), truncated to its 8 bytes
of odd index. Here: reading such a tap, and making one (the simulator)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

PICC_DATA_TAG = 0xC7  # UID mirrored, counter mirrored, UID of 7 bytes
UID_BYTES = 7
KEY_BYTES = 16
MAX_COUNTER = 0xFFFFFF


class InvalidTap(ValueError):
    """The tap's data is malformed or its MAC is wrong for these keys."""


@dataclass(frozen=True)
class TapData:
    uid: bytes
    counter: int


def cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B), 16 bytes."""
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _cbc(key: bytes, data: bytes, *, decrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(bytes(16)))
    worker = cipher.decryptor() if decrypt else cipher.encryptor()
    return worker.update(data) + worker.finalize()


def session_mac_key(file_key: bytes, uid: bytes, counter: int) -> bytes:
    """KSesSDMFileReadMAC = CMAC(K_SDMFileRead, SV2), SV2 = 3CC3 0001 0080 || UID
    || SDMReadCtr (3 bytes, least significant first)."""
    sv2 = bytes.fromhex("3CC300010080") + uid + counter.to_bytes(3, "little")
    return cmac(file_key, sv2)


def sdmmac(file_key: bytes, uid: bytes, counter: int, mac_input: bytes = b"") -> bytes:
    """The 8-byte SDMMAC: the session key's CMAC of the MAC input (empty when
    the MAC input offset is the MAC's own offset), bytes 1, 3, ..., 15."""
    return cmac(session_mac_key(file_key, uid, counter), mac_input)[1::2]


def decrypt_picc_data(meta_key: bytes, picc_data: bytes) -> TapData:
    if len(picc_data) != 16:
        raise InvalidTap("PICCData is 16 bytes")
    plain = _cbc(meta_key, picc_data, decrypt=True)
    if plain[0] != PICC_DATA_TAG:
        raise InvalidTap("PICCData does not decrypt with this key")
    return TapData(plain[1:8], int.from_bytes(plain[8:11], "little"))


def read_tap(meta_key: bytes, file_key: bytes, picc_hex: str, mac_hex: str) -> TapData:
    """The UID and counter of a tap whose PICCData and SDMMAC (hex, from the
    URL) are genuine for these keys; InvalidTap otherwise."""
    try:
        picc_data, mac = bytes.fromhex(picc_hex), bytes.fromhex(mac_hex)
    except ValueError:
        raise InvalidTap("not hexadecimal") from None
    if len(mac) != 8:
        raise InvalidTap("SDMMAC is 8 bytes")
    data = decrypt_picc_data(meta_key, picc_data)
    expected = sdmmac(file_key, data.uid, data.counter)
    if not secrets.compare_digest(expected, mac):
        raise InvalidTap("SDMMAC does not match")
    return data


def make_tap(
    meta_key: bytes, file_key: bytes, uid: bytes, counter: int, *, padding: bytes | None = None
) -> tuple[str, str]:
    """What a tag with these keys mirrors at the tap with ``counter``: PICCData
    and SDMMAC as upper-case hex (the simulator's tag)."""
    if len(uid) != UID_BYTES or not 0 <= counter <= MAX_COUNTER:
        raise ValueError("a UID of 7 bytes and a counter of 24 bits")
    filler = secrets.token_bytes(5) if padding is None else padding
    plain = bytes([PICC_DATA_TAG]) + uid + counter.to_bytes(3, "little") + filler
    picc_data = _cbc(meta_key, plain, decrypt=False)
    return picc_data.hex().upper(), sdmmac(file_key, uid, counter).hex().upper()


def new_key() -> str:
    """A new AES-128 key, hex, to program into a tag."""
    return secrets.token_hex(KEY_BYTES).upper()
