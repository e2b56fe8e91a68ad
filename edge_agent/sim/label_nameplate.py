"""Text-only nameplates: the GB/T 34014 code printed as text with Chinese and English lines.

In-process API::

    plate = render_nameplate(seed=3, degrade=0.4)
    plate.image      # BGR uint8
    plate.code       # the code printed on it (24 or 19 characters)
    plate.fields     # the rated values printed on it, as text

Fonts come from Debian packages (fonts-noto-cjk, fonts-wqy-microhei, fonts-dejavu-core);
Pillow draws them. The degradation (perspective, rotation, curvature, low contrast, glare,
blur, noise) is the one ``render_label`` uses, scaled by ``degrade`` in 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_agent.errors import SimulatorError
from edge_agent.sim.label_render import degrade_image, random_pack_code

#: (path, face index) of CJK-capable fonts shipped by Debian packages.
FONT_CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # SC face
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
)
DEBIAN_FONT_PACKAGES = ("fonts-noto-cjk", "fonts-wqy-microhei")
_MAKERS = (
    ("宁德时代新能源科技股份有限公司", "Contemporary Amperex Technology Co., Limited"),
    ("比亚迪股份有限公司", "BYD Company Limited"),
    ("国轩高科股份有限公司", "Gotion High-tech Co., Ltd."),
    ("惠州亿纬锂能股份有限公司", "EVE Energy Co., Ltd."),
)
_CHEM = {"B": ("磷酸铁锂", "LiFePO4"), "E": ("三元锂", "NCM")}


@dataclass(frozen=True, kw_only=True)
class Nameplate:
    """A rendered nameplate and what is printed on it."""

    image: np.ndarray
    code: str
    fields: dict[str, str] = field(default_factory=dict)
    font: str = ""


def available_fonts() -> list[tuple[str, int]]:
    """The CJK fonts installed on this machine (empty when no Debian font package is)."""
    return [(p, i) for p, i in FONT_CANDIDATES if Path(p).is_file()]


def cascade_code(code24: str) -> str:
    """The 19-character cascade-use form derived from a 24-character code."""
    return code24[:7] + code24[14:24] + "R" + code24[3]


def _lines(code: str, rng: np.random.Generator) -> tuple[list[tuple[str, int]], dict[str, str]]:
    letter = code[4]
    cn_chem, en_chem = _CHEM.get(letter, ("锂离子", "Li-ion"))
    maker_cn, maker_en = _MAKERS[int(rng.integers(0, len(_MAKERS)))]
    cells = int(rng.choice([16, 24, 96, 108]))
    volts = round(cells * (3.2 if letter == "B" else 3.65), 1)
    amps = int(rng.choice([50, 100, 150, 280]))
    energy = round(volts * amps / 1000, 2)
    mass = int(rng.integers(20, 400))
    fields = {
        "rated_voltage_v": f"{volts:g}",
        "rated_capacity_ah": f"{amps}",
        "rated_energy_kwh": f"{energy:g}",
        "mass_kg": f"{mass}",
        "chemistry": "lfp" if letter == "B" else "ncm",
        "manufacturer": maker_cn,
    }
    lines = [
        (f"{cn_chem}电池包  {en_chem} Battery Pack", 40),
        (f"额定电压 Rated Voltage: {volts:g}V", 32),
        (f"额定容量 Rated Capacity: {amps}Ah", 32),
        (f"额定能量 Rated Energy: {energy:g}kWh", 32),
        (f"重量 Weight: {mass}kg", 32),
        (f"编码 Code: {code}", 36),
        (f"制造商: {maker_cn}", 30),
        (f"Manufacturer: {maker_en}", 26),
    ]
    return lines, fields


def render_nameplate(
    *, seed: int, degrade: float, code: str | None = None, cascade: bool = False
) -> Nameplate:
    """Render a text-only nameplate (no barcode) for ``seed``; deterministic."""
    from PIL import Image, ImageDraw, ImageFont

    if not 0.0 <= degrade <= 1.0:
        raise SimulatorError(f"degrade must be 0..1, got {degrade}")
    fonts = available_fonts()
    if not fonts:
        raise SimulatorError(f"no CJK font installed: apt install {' '.join(DEBIAN_FONT_PACKAGES)}")
    rng = np.random.default_rng([seed, 34014])
    if code is None:
        code = random_pack_code(rng)
        if cascade:
            code = cascade_code(code)
    path, index = fonts[seed % len(fonts)]
    lines, fields = _lines(code, rng)
    width, height = 1200, 620
    img = Image.new("L", (width, height), 245)
    draw = ImageDraw.Draw(img)
    draw.rectangle((8, 8, width - 9, height - 9), outline=30, width=3)
    y = 30
    for text, size in lines:
        font = ImageFont.truetype(path, size, index=index)
        draw.text((36, y), text, fill=20, font=font)
        y += int(size * 1.55)
    label = np.asarray(img, dtype=np.uint8).copy()
    gray = degrade_image(label, degrade, rng) if degrade > 0 else label
    return Nameplate(
        image=cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), code=code, fields=fields, font=Path(path).name
    )
