"""Pillow plugin: ``import pywalloc.pillow`` lets ``PIL.Image`` open and save ``.wlc`` images.

    from PIL import Image
    import pywalloc.pillow

    im = Image.open("photo.wlc")          # lazy: only the header is parsed here
    im.thumbnail((128, 128))              # decodes, then resizes
    im.save("copy.wlc", codec="rgb-4x")   # format from the suffix, or format="WLC"

Save options: ``codec`` (an image preset name or a loaded :class:`pywalloc.Codec`; default
``rgb-16x``) and ``effort`` (lossless WebP method 0-6). Images in modes other than ``RGB`` and
``L`` are converted as Pillow's JPEG writer would take them; modes with transparency are refused,
as JPEG refuses them. Audio ``.wlc`` files are not images: ``Image.open`` does not identify them.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from . import container
from .errors import FormatError, WallocError

FORMAT = "WLC"
_PREFIX_LEN = 12  # magic, version, modality, entropy id, reserved, metadata length
_IMAGE_MODALITY_ID = 1


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == container.MAGIC


class WlcImageFile(ImageFile.ImageFile):
    """A ``.wlc`` image opened through Pillow; pixels are decoded on ``load()``."""

    format = FORMAT
    format_description = "WaLLoC learned lossy compression"

    def _open(self) -> None:
        assert self.fp is not None
        blob = self.fp.read()
        if len(blob) >= _PREFIX_LEN and blob[5] != _IMAGE_MODALITY_ID:
            raise SyntaxError("this .wlc file holds audio, not an image")
        try:
            header, _ = container.read(blob)
        except FormatError as exc:
            raise SyntaxError(f"not a valid .wlc image: {exc}") from None
        height, width = header.shape
        self._mode = "L" if header.mode == "L" else "RGB"
        self._size = (width, height)
        self.info["codec"] = header.preset
        self.tile = [("wlc", (0, 0, width, height), 0, ())]  # type: ignore[list-item]


class _WlcDecoder(ImageFile.PyDecoder):
    """Reads the whole file (its CRC covers every byte) and decodes it with the bundled codec."""

    _pulls_fd = True

    def decode(self, buffer: bytes | Image.SupportsArrayInterface) -> tuple[int, int]:
        from .api import decode_blob

        assert self.fd is not None
        try:
            pixels = decode_blob(self.fd.read()).data
        except (WallocError, ValueError, KeyError) as exc:  # bad file, other weights, unknown codec
            raise OSError(f"cannot decode .wlc image: {exc}") from None
        if self.mode == "RGB" and pixels.ndim == 2:
            import numpy as np

            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        elif self.mode == "L" and pixels.ndim == 3:
            pixels = ((pixels.astype("uint16").sum(axis=2) + 1) // 3).astype("uint8")
        self.set_as_raw(pixels.tobytes())
        return -1, 0


_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from .api import compress_image

    options = im.encoderinfo
    if im.mode in _ALPHA_MODES or (im.mode == "P" and "transparency" in im.info):
        raise OSError(f"cannot write mode {im.mode} as {FORMAT} (drop the alpha channel first, "
                      "e.g. im.convert('RGB'))")
    try:  # 16-bit gray is scaled to 8 bits (Pillow's convert("L") would clip it)
        blob = compress_image(im, options.get("codec"), options.get("effort"))
    except (WallocError, ValueError, KeyError) as exc:  # a wrong codec name or kind, bad size
        raise OSError(f"cannot write {FORMAT}: {exc}") from None
    fp.write(blob)


def register() -> None:
    """Register the plugin with Pillow (done on import; calling it again is harmless)."""
    Image.register_open(FORMAT, WlcImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".wlc")
    Image.register_mime(FORMAT, "image/x-wlc")
    Image.register_decoder("wlc", _WlcDecoder)


register()

__all__ = ["FORMAT", "WlcImageFile", "register"]
