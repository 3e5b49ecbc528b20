"""A chart a regulator would rather look at than read: completion by province (or, for
a single province, by field) as horizontal stacked bars.

matplotlib with the Agg backend (no display). Chinese labels need a CJK font (Noto Sans
CJK from Debian's fonts-noto-cjk, or another listed below); without one the chart is
drawn with English labels and a warning is logged once, rather than boxes for glyphs.
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache

from bot.core.fields import field_label
from bot.reports.status import StatusReport, Tally

log = logging.getLogger(__name__)

CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Noto Serif CJK SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
)

PROVINCE_EN = {
    "北京": "Beijing", "天津": "Tianjin", "河北": "Hebei", "山西": "Shanxi", "内蒙古": "Inner Mongolia",
    "辽宁": "Liaoning", "吉林": "Jilin", "黑龙江": "Heilongjiang", "上海": "Shanghai", "江苏": "Jiangsu",
    "浙江": "Zhejiang", "安徽": "Anhui", "福建": "Fujian", "江西": "Jiangxi", "山东": "Shandong", "河南": "Henan",
    "湖北": "Hubei", "湖南": "Hunan", "广东": "Guangdong", "广西": "Guangxi", "海南": "Hainan", "重庆": "Chongqing",
    "四川": "Sichuan", "贵州": "Guizhou", "云南": "Yunnan", "西藏": "Tibet", "陕西": "Shaanxi", "甘肃": "Gansu",
    "青海": "Qinghai", "宁夏": "Ningxia", "新疆": "Xinjiang", "新疆生产建设兵团": "XPCC",
}  # fmt: skip


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The name of an installed font that has Chinese glyphs, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            return name
    log.warning("No CJK font found (install fonts-noto-cjk): digest charts use English labels")
    return None


def completion_chart(report: StatusReport, *, chinese: bool | None = None) -> bytes:
    """PNG bytes: signed / finished / in progress / not started per province, or per field
    when the scope has a single province. ``chinese=None``: Chinese if a CJK font exists."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    font = cjk_font()
    zh = font is not None if chinese is None else (chinese and font is not None)
    if len(report.by_province) > 1:
        groups: list[tuple[str, Tally]] = [
            (p if zh else PROVINCE_EN.get(p, p), t) for p, t in sorted(report.by_province.items())
        ]
        title = "各省份自查完成情况" if zh else "Self-check completion by province"
    else:
        groups = [(field_label(f, "zh_CN" if zh else "en"), t) for f, t in sorted(report.by_field.items())]
        where = next(iter(report.by_province), "")
        title = f"{where} 各领域自查完成情况" if zh else f"Self-check completion by field {PROVINCE_EN.get(where, '')}"
    groups.sort(key=lambda g: (g[1].completed / g[1].total) if g[1].total else 0)
    labels = [g[0] for g in groups] or ["—"]
    series = [
        ("signed", "已签署" if zh else "Signed", "#2e7d32"),
        ("finished", "已完成未签署" if zh else "Finished, not signed", "#81c784"),
        ("in_progress", "进行中" if zh else "In progress", "#ffb74d"),
        ("not_started", "未开始" if zh else "Not started", "#e0e0e0"),
    ]
    height = max(3.2, 0.32 * len(labels) + 2.0)
    rc = {"font.family": "sans-serif", "font.sans-serif": [font, "DejaVu Sans"]} if zh and font else {}
    left = [0.0] * len(labels)
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(8, height), dpi=100)
        ax = fig.add_subplot()
        for key, name, color in series:
            values = [
                (100 * getattr(t, key) / t.total if t.total else 0.0) for _label, t in groups
            ] or [0.0]
            ax.barh(labels, values, left=left, color=color, label=name, height=0.7)
            left = [a + b for a, b in zip(left, values, strict=True)]
        for y, (_label, t) in enumerate(groups):
            pct = 100 * t.completed // t.total if t.total else 0
            ax.text(101, y, f"{pct}%  ({t.completed}/{t.total})", va="center", fontsize=8)
        ax.set_xlim(0, 125)
        ax.set_xlabel("机构占比 %" if zh else "Share of institutions, %")
        ax.set_title(title)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 * 3 / height), ncol=4, fontsize=8, frameon=False)
        ax.tick_params(axis="y", labelsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    return buffer.getvalue()
