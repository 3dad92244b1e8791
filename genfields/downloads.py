"""The registry of real-world components (the paper's setting) and their verified downloads.

Each `Asset` names one official file: where it comes from, the SHA-256 it must have (or, where
no full digest is published, the prefix that torch-hub style file names carry), its size and
its licence. Files live in the cache folder `GENFIELDS_HOME` (default: the user's cache dir +
`genfields`). Downloads resume from a `.part` file with an HTTP Range request, are verified
before an atomic rename, and fail offline with a message that says which file to put where.

Where no digest is published (NVIDIA's paper256 generator), the first complete download is
trusted and its SHA-256 pinned in the cache (`pins.json`: digest, size, when and how it was
pinned); a later file with other bytes is refused in one line (trust on first use).
"""

from __future__ import annotations

import bz2
import datetime
import hashlib
import json
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from genfields.errors import GenfieldsError, check_output_folder, check_regular_file, short_message

CHUNK = 1 << 20


class DownloadError(GenfieldsError):
    """A component that is missing, cannot be fetched (offline), or fails its verification."""


@dataclass(frozen=True)
class Asset:
    """One downloadable file: where it comes from, how to verify it, and what it is for."""

    name: str
    filename: str
    url: str
    sha256: Optional[str] = None  # the full digest of the final file, when a public source gives it
    sha256_prefix: Optional[str] = None  # only a prefix is known (torch-hub file names)
    size: Optional[int] = None  # bytes of the final (decompressed) file
    licence: str = ""
    purpose: str = ""
    hash_source: str = ""  # where the digest was read, so that anyone can re-check it
    compression: Optional[str] = None  # "bz2": the URL serves a compressed file

    @property
    def verification(self) -> str:
        """'sha256', 'sha256-prefix' or 'none': how strongly a file can be checked."""
        if self.sha256:
            return "sha256"
        return "sha256-prefix" if self.sha256_prefix else "none"


_DDFA = "https://github.com/cleardusk/3DDFA_V2/raw/master/"
_DDFA_SRC = "third-party audit record of 3DDFA_V2 assets (public GitHub), not published by the 3DDFA_V2 authors"
_DDFA_LICENCE = "3DDFA_V2 code and weights: MIT"
_BFM_LICENCE = "derived from the Basel Face Model 2009: academic use only; commercial use needs a BFM licence"

REGISTRY: dict[str, Asset] = {a.name: a for a in [
    Asset(
        name="stylegan2-ffhq256",
        filename="ffhq-res256-mirror-paper256-noaug.pkl",
        url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/"
            "ffhq-res256-mirror-paper256-noaug.pkl",
        licence="NVIDIA Source Code License-NC (stylegan2-ada-pytorch): non-commercial use only",
        purpose="the paper's generator: StyleGAN2 FFHQ 256x256, config paper256 (4928-dim S)",
        hash_source="no published SHA-256 found; the file is loaded with our allow-listed unpickler only",
    ),
    Asset(
        name="inception-fid",
        filename="pt_inception-2015-12-05-6726825d.pth",
        url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
        sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        sha256_prefix="6726825d",
        licence="pytorch-fid: Apache-2.0; weights ported from TensorFlow's inception-2015-12-05 (Apache-2.0)",
        purpose="InceptionV3 for FID and the attribute encoder E_attr (2048-d pool features)",
        hash_source="prefix: the torch-hub file name; full digest: one third-party record (public GitHub) "
                    "that agrees with the prefix",
    ),
    Asset(
        name="3ddfa-mobilenet",
        filename="mb1_120x120.pth",
        url=_DDFA + "weights/mb1_120x120.pth",
        sha256="a45a946c6e9b16f8d3cf2e69376da9560a7cf9afae671bebceb7e437a405ea79",
        size=13_755_269,
        licence=_DDFA_LICENCE,
        purpose="E_lnd/E_pose: 3DDFA_V2 MobileNet-V1 regressing the 62 3DMM parameters from 120x120 crops",
        hash_source=_DDFA_SRC + "; the same digest appears in a second project's registry (HF mirror)",
    ),
    Asset(
        name="3ddfa-param-mean-std",
        filename="param_mean_std_62d_120x120.pkl",
        url=_DDFA + "configs/param_mean_std_62d_120x120.pkl",
        sha256="090d7150f77cb66c29ddae21e4508fbde59123dcd1dea7facc24a7ed06d1c795",
        size=713,
        licence=_DDFA_LICENCE,
        purpose="mean and std that de-normalise the 62 parameters",
        hash_source=_DDFA_SRC,
    ),
    Asset(
        name="3ddfa-bfm",
        filename="bfm_noneck_v3.pkl",
        url=_DDFA + "configs/bfm_noneck_v3.pkl",
        sha256="89ac96480eddc331120f2c8401737c55a5fcc97b10f8a64574e63976c3d246ca",
        size=24_393_598,
        licence=_BFM_LICENCE,
        purpose="3DMM mean shape, shape (40) and expression (10) bases, and the 68 keypoint indices",
        hash_source=_DDFA_SRC,
    ),
    Asset(
        name="facenet-vggface2",
        filename="20180402-114759-vggface2.pt",
        url="https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
        sha256="281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b",
        size=111_898_327,
        licence="facenet-pytorch: MIT (weights ported from David Sandberg's facenet, MIT); "
                "trained on VGGFace2 (check the dataset's terms)",
        purpose="E_id: InceptionResnetV1 trained on VGGFace2 (512-d embeddings of 160x160 crops)",
        hash_source="several independent third-party records (public GitHub) agree on digest and size",
    ),
    Asset(
        name="dlib-landmarks68",
        filename="shape_predictor_68_face_landmarks.dat",
        url="http://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2",
        sha256="fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
        size=99_693_937,
        compression="bz2",
        licence="dlib: Boost; the model is trained on iBUG 300-W, whose licence excludes commercial use",
        purpose="68 landmarks for FFHQ-style alignment (also shipped by the face-recognition-models package)",
        hash_source="computed here from the identical file inside the PyPI package face-recognition-models 0.3.0 "
                    "(the digest is of the decompressed .dat)",
    ),
]}


def home() -> Path:
    """The cache folder: $GENFIELDS_HOME, else the user's cache dir + genfields."""
    if os.environ.get("GENFIELDS_HOME"):
        return Path(os.environ["GENFIELDS_HOME"]).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "genfields"


def get_asset(name: str) -> Asset:
    """The registry entry `name`, or a DownloadError listing the known names."""
    if name not in REGISTRY:
        raise DownloadError(f"unknown component '{name}'; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def asset_path(asset: Asset, root: Optional[Path] = None) -> Path:
    """Where the (verified, decompressed) file of `asset` lives in the cache."""
    return (root or home()) / asset.filename


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


PINS_FILE = "pins.json"


def read_pins(root: Optional[Path] = None) -> dict[str, dict]:
    """The trust-on-first-use pins of the cache: asset name -> {sha256, size, filename, origin, pinned_at}."""
    path = (root or home()) / PINS_FILE
    if not os.path.lexists(path):
        return {}
    repair = "it records the digests trusted on first download: repair or delete it"
    try:
        check_regular_file(path, "pin file")
        pins = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, not UTF-8, not a regular file
        raise DownloadError(f"{path}: unreadable pin file ({short_message(exc)}); {repair}") from None
    if not isinstance(pins, dict):
        raise DownloadError(f"{path}: corrupt pin file (a JSON {type(pins).__name__}, expected an object of "
                            f"name -> pin); {repair}")
    for name, pin in pins.items():
        problem = _pin_problem(pin)
        if problem:
            raise DownloadError(f"{path}: corrupt pin of '{name}' ({problem}); {repair}")
    return pins


def _pin_problem(pin: object) -> str:
    """What is wrong with one pin record ('' if nothing)."""
    if not isinstance(pin, dict):
        return f"a JSON {type(pin).__name__}, expected an object"
    digest, size = pin.get("sha256"), pin.get("size")
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        return "sha256 is not 64 lower-case hex digits"
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return "size is not a byte count"
    if not all(isinstance(pin.get(key, ""), str) for key in ("pinned_at", "origin", "filename")):
        return "pinned_at, origin and filename must be text"
    return ""


def pin_of(asset: Asset, root: Optional[Path] = None) -> Optional[dict]:
    """The pin of an asset without a published digest, if one was recorded."""
    return read_pins(root).get(asset.name) if asset.verification == "none" else None


def pin_digest(asset: Asset, path: Path, origin: str, root: Optional[Path] = None) -> dict:
    """Record the SHA-256 and size of `path` as the trusted bytes of `asset` (trust on first use)."""
    root = root or home()
    pins = read_pins(root)
    pins[asset.name] = {"sha256": sha256_of(path), "size": path.stat().st_size, "filename": asset.filename,
                        "origin": origin, "pinned_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                            timespec="seconds")}
    tmp = root / (PINS_FILE + ".tmp")
    tmp.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, root / PINS_FILE)
    return pins[asset.name]


def verification(asset: Asset, root: Optional[Path] = None) -> str:
    """How a file is checked: 'sha256', 'sha256-prefix', 'sha256-pinned' (trusted on first use) or 'none'."""
    if asset.verification == "none" and pin_of(asset, root):
        return "sha256-pinned"
    return asset.verification


def check_digest(asset: Asset, path: Path, root: Optional[Path] = None) -> None:
    """Refuse `path` unless its SHA-256 matches the entry (full digest, else the known prefix, else the pin)."""
    pin = pin_of(asset, root or path.parent)
    if pin and path.stat().st_size != pin["size"]:
        raise DownloadError(f"{asset.filename}: {path.stat().st_size} bytes, not the {pin['size']} pinned on "
                            f"{pin['pinned_at']} ({pin['origin']}); the file was refused (a different or corrupt "
                            f"file; if you trust it, delete the '{asset.name}' entry of {PINS_FILE})")
    actual = sha256_of(path)
    if pin and actual != pin["sha256"]:
        raise DownloadError(f"{asset.filename}: SHA-256 {actual} differs from the {pin['sha256']} pinned on "
                            f"{pin['pinned_at']} ({pin['origin']}); the file was refused (no digest is published "
                            f"for it; if you trust the new file, delete the '{asset.name}' entry of {PINS_FILE})")
    expected = asset.sha256 or asset.sha256_prefix
    if expected and not actual.startswith(expected):
        raise DownloadError(f"{asset.filename}: SHA-256 {actual} does not match the expected "
                            f"{'digest' if asset.sha256 else 'prefix'} {expected}; the file was refused "
                            f"(corrupt or different download)")


def status(asset: Asset, root: Optional[Path] = None, verify: bool = True) -> str:
    """'missing', 'present' (not hashed or no digest known), 'verified' or 'corrupt'."""
    path = asset_path(asset, root)
    if not path.is_file():
        return "missing"
    if not verify or verification(asset, root) == "none":
        return "present"
    try:
        check_digest(asset, path, root)
    except DownloadError:
        return "corrupt"
    return "verified"


def offline_message(asset: Asset, root: Optional[Path] = None, reason: str = "") -> str:
    """The message that says which file to fetch from where, and where to put it."""
    path = asset_path(asset, root)
    fetch = f"{asset.url} and decompress it ({asset.compression})" if asset.compression else asset.url
    why = f" ({reason})" if reason else ""
    return (f"{asset.name}: {asset.filename} is not available{why}. On a machine with internet run "
            f"`genfields download {asset.name}`, or download {fetch} and put it at {path} "
            f"(set GENFIELDS_HOME to use another folder)")


def require(name: str, root: Optional[Path] = None) -> Path:
    """The cached file of component `name`; a DownloadError naming file, URL and folder if absent."""
    asset = get_asset(name)
    path = asset_path(asset, root)
    if not path.is_file():
        raise DownloadError(offline_message(asset, root, "not in the cache"))
    if pin_of(asset, root):  # no published digest: the bytes must still be those trusted on first use
        check_digest(asset, path, root)
    return path


def require_all(names: Iterable[str], root: Optional[Path] = None, extra_missing: Iterable[str] = ()) -> dict[str, Path]:
    """The cached files of several components, or one DownloadError naming every missing file
    (with its URL and where to put it) and any `extra_missing` needs of the caller."""
    assets = [get_asset(n) for n in names]
    missing = [a for a in assets if not asset_path(a, root).is_file()]
    problems = [f"{a.filename} ({a.name}): download {a.url}" + (f" and decompress it ({a.compression})"
                                                                  if a.compression else "")
                + f", put it at {asset_path(a, root)}" for a in missing] + list(extra_missing)
    if problems:
        fetch = f" On a machine with internet run `genfields download {' '.join(a.name for a in missing)}`;" \
            if missing else ""
        raise DownloadError(f"{len(problems)} required file(s) missing (set GENFIELDS_HOME to use another folder "
                            f"than {root or home()}):{fetch} " + "; ".join(problems))
    return {a.name: asset_path(a, root) for a in assets}


def _open_range(url: str, start: int, timeout: float):
    """Open `url` from byte `start` (HTTP Range); returns (response, resumed)."""
    request = urllib.request.Request(url, headers={"User-Agent": "genfields"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    response = urllib.request.urlopen(request, timeout=timeout)
    return response, start > 0 and response.status == 206


def _total_size(response, offset: int) -> Optional[int]:
    """The full size of the remote file from Content-Range or Content-Length, if the server says."""
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range and not content_range.endswith("*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return offset + int(length) if length else None


def _fetch(asset: Asset, part: Path, timeout: float, progress: bool) -> None:
    """Download `asset.url` into `part`, appending to what a previous attempt left there."""
    from tqdm import tqdm

    start = part.stat().st_size if part.exists() else 0
    if progress:
        print(f"{asset.name}: connecting to {urllib.parse.urlsplit(asset.url).netloc} (giving up after "
              f"{timeout:.0f} s without an answer)", file=sys.stderr, flush=True)
    try:
        response, resumed = _open_range(asset.url, start, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the part is already complete
            return
        raise DownloadError(f"{asset.name}: {asset.url} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(offline_message(asset, part.parent, f"cannot reach {asset.url}: {reason}")) from None
    offset = start if resumed else 0
    try:
        with response, open(part, "ab" if resumed else "wb") as out, tqdm(
                total=_total_size(response, offset), initial=offset, unit="B", unit_scale=True,
                desc=asset.filename, disable=not progress) as bar:
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                bar.update(len(block))
    except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
        raise DownloadError(f"{asset.name}: {asset.url} stopped sending ({short_message(exc)}); the "
                            f"{part.stat().st_size if part.exists() else 0} bytes so far are kept in {part}: run "
                            "the command again to resume") from None


def _decompress(asset: Asset, archive: Path, target: Path) -> None:
    """Decompress a downloaded archive into `target` (bz2 only)."""
    if asset.compression != "bz2":
        raise DownloadError(f"{asset.name}: unsupported compression {asset.compression!r}")
    with bz2.open(archive, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)


READ_TIMEOUT = 30.0  # seconds without a byte before a download gives up (the part is kept for a resume)


def download(asset: Asset, root: Optional[Path] = None, timeout: float = READ_TIMEOUT, progress: bool = True,
             force: bool = False) -> Path:
    """Fetch, verify and atomically install one component; a verified cached file is kept as is.

    The bytes go to `<file>.part` (resumed with an HTTP Range request when a previous attempt
    stopped), are decompressed if the URL serves an archive, checked against the SHA-256 (a
    mismatch deletes them) and only then renamed to the final name.
    """
    root = root or home()
    try:
        check_output_folder(root, "the download folder (GENFIELDS_HOME)")
        root.mkdir(parents=True, exist_ok=True)
    except (OSError, GenfieldsError) as exc:
        raise DownloadError(short_message(exc) if isinstance(exc, OSError) else str(exc)) from None
    path = asset_path(asset, root)
    if path.is_file() and not force and status(asset, root) in ("verified", "present"):
        if asset.verification == "none" and not pin_of(asset, root):
            pin_digest(asset, path, "trusted on first use: the file found in the cache", root)
        return path
    part = root / (Path(asset.url).name + ".part")
    _fetch(asset, part, timeout, progress)
    candidate = part
    if asset.compression:
        candidate = root / (asset.filename + ".tmp")
        _decompress(asset, part, candidate)
    try:
        check_digest(asset, candidate, root)
    except DownloadError:
        part.unlink(missing_ok=True)
        candidate.unlink(missing_ok=True)
        raise
    if asset.verification == "none" and not pin_of(asset, root):
        pin_digest(asset, candidate, f"trusted on first use: the first complete download from {asset.url}", root)
    os.replace(candidate, path)
    part.unlink(missing_ok=True)
    return path


def iter_status(root: Optional[Path] = None, verify: bool = True) -> Iterator[dict]:
    """One row per registry entry: name, file, status, verification, size, path, URL, licence."""
    for asset in REGISTRY.values():
        pin = pin_of(asset, root)
        yield {"name": asset.name, "file": asset.filename, "status": status(asset, root, verify),
               "verification": verification(asset, root), "size": asset.size or (pin or {}).get("size"),
               "path": str(asset_path(asset, root)), "url": asset.url, "licence": asset.licence,
               "digest_source": (f"pinned {pin['pinned_at']} ({pin['origin']}): {pin['sha256']}" if pin
                                 else asset.hash_source)}
