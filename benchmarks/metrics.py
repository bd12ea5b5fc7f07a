"""Full-reference quality inside the hole, and how visible the seam around it is.

Everything outside the hole is copied from the original, so whole-image scores mostly measure
the hole ratio; these scores look only at the filled pixels. All take the original and the
result as (H, W, 3) uint8 RGB and the hole as (H, W) bool, and work on the hole's bounding box
(plus the filters' reach), so a 10-megapixel photo costs no more than its holes.

* PSNR (dB, higher is better) and L1 (mean absolute error, 0..1, lower is better) over hole pixels.
* SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03), the SSIM map averaged
  over hole pixels (windows reach 5 px into the kept surroundings, as in masked SSIM).
* GMSD (Xue et al. 2014, gradient magnitude similarity deviation; lower is better): the standard
  deviation of the gradient-magnitude similarity map over the hole, at half resolution like the
  paper. It needs no pretrained network, so it runs offline, and it punishes blur and broken
  structure that PSNR rewards or ignores.
* Seam: root mean square of the gradient magnitude the result has *in excess* of the original
  in a band along the hole border (2 px inside, ``band`` px outside), in 8-bit levels; a hard
  edge where the fill meets the photo scores high, a smooth transition low.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from skimage.metrics import structural_similarity

PAD = 24  # > SSIM's window radius (5), GMSD's reach (2 px at half resolution) and the seam band
GMSD_C = 170.0  # the paper's constant for 8-bit luminance
SEAM_BAND = 12  # px outside the hole: the default 8 px feather plus the gradient filter's reach
_PREWITT = np.array([[1, 0, -1]] * 3, np.float32) / 3


def crop(original: np.ndarray, result: np.ndarray, hole: np.ndarray, pad: int = PAD):
    """The three arrays cut to the hole's bounding box plus ``pad`` (origin kept even for GMSD)."""
    ys, xs = np.nonzero(hole)
    if ys.size == 0:
        raise ValueError("the hole is empty")
    y0, x0 = max(0, ys.min() - pad) // 2 * 2, max(0, xs.min() - pad) // 2 * 2
    y1, x1 = ys.max() + pad + 1, xs.max() + pad + 1
    return original[y0:y1, x0:x1], result[y0:y1, x0:x1], hole[y0:y1, x0:x1]


def psnr(original: np.ndarray, result: np.ndarray, hole: np.ndarray) -> float:
    """Peak signal-to-noise ratio over hole pixels (inf when they are identical)."""
    diff = original[hole].astype(np.float64) - result[hole].astype(np.float64)
    mse = float(np.mean(diff**2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def l1(original: np.ndarray, result: np.ndarray, hole: np.ndarray) -> float:
    """Mean absolute difference over hole pixels, as a fraction of the 8-bit range."""
    return float(np.mean(np.abs(original[hole].astype(np.float64) - result[hole])) / 255.0)


def ssim(original: np.ndarray, result: np.ndarray, hole: np.ndarray) -> float:
    """Mean SSIM over hole pixels (1 = identical)."""
    original, result, hole = crop(original, result, hole)
    _, full = structural_similarity(original, result, channel_axis=2, data_range=255, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False, full=True)
    return float(full.mean(axis=2)[hole].mean())


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luminance, float32 in 0..255."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _halve(values: np.ndarray, reduce) -> np.ndarray:
    """2x2 blocks -> one value (the GMSD paper averages before subsampling)."""
    h, w = values.shape[0] // 2 * 2, values.shape[1] // 2 * 2
    return reduce(values[:h, :w].reshape(h // 2, 2, w // 2, 2), axis=(1, 3))


def _prewitt_magnitude(y: np.ndarray) -> np.ndarray:
    gx = cv2.filter2D(y, cv2.CV_32F, _PREWITT, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(y, cv2.CV_32F, _PREWITT.T, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx**2 + gy**2)


def gmsd(original: np.ndarray, result: np.ndarray, hole: np.ndarray) -> float:
    """Gradient magnitude similarity deviation over the hole (0 = identical structure)."""
    original, result, hole = crop(original, result, hole)
    m1 = _prewitt_magnitude(_halve(luma(original), np.mean))
    m2 = _prewitt_magnitude(_halve(luma(result), np.mean))
    similarity = (2 * m1 * m2 + GMSD_C) / (m1**2 + m2**2 + GMSD_C)
    return float(np.std(similarity[_halve(hole, np.any)], dtype=np.float64))


def sobel_magnitude(rgb: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the luminance (Sobel, 8-bit levels per pixel)."""
    y = luma(rgb)
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3, scale=0.25, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3, scale=0.25, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx**2 + gy**2)


def border_band(hole: np.ndarray, band: int = SEAM_BAND, inside: int = 2) -> np.ndarray:
    """Pixels at most ``inside`` px inside or ``band`` px outside the hole's border."""
    hole8 = hole.astype(np.uint8)
    to_hole = cv2.distanceTransform(1 - hole8, cv2.DIST_L2, 5)  # distance of kept pixels to the hole
    to_keep = cv2.distanceTransform(hole8, cv2.DIST_L2, 5)  # distance of hole pixels to the kept area
    return (hole & (to_keep <= inside)) | (~hole & (to_hole <= band))


def seam(original: np.ndarray, result: np.ndarray, hole: np.ndarray, band: int = SEAM_BAND) -> float:
    """RMS of the edge strength the result adds along the hole border (0 = no added edges)."""
    original, result, hole = crop(original, result, hole, pad=max(PAD, band + 4))
    excess = np.maximum(sobel_magnitude(result) - sobel_magnitude(original), 0.0)
    return float(np.sqrt(np.mean(excess[border_band(hole, band)].astype(np.float64) ** 2)))


def hole_scores(original: np.ndarray, result: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    """Every in-hole score of one result, keyed like the report's columns."""
    return {"psnr": psnr(original, result, hole), "ssim": ssim(original, result, hole),
            "l1": l1(original, result, hole), "gmsd": gmsd(original, result, hole)}
