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
from typing import TYPE_CHECKING

from bot.core.fields import field_label
from bot.reports.status import StatusReport, Tally

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
    buffer = io.BytesIO()
    completion_figure(report, chinese=chinese, png=buffer)
    return buffer.getvalue()


def completion_figure(report: StatusReport, *, chinese: bool | None = None, png: io.BytesIO | None = None) -> Figure:
    """The chart's figure (drawn, so its layout can be inspected); written as PNG to ``png``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

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
    height = max(3.4, 0.32 * len(labels) + 2.2)
    rc = {"font.family": "sans-serif", "font.sans-serif": [font, "DejaVu Sans"]} if zh and font else {}
    left = [0.0] * len(labels)
    with matplotlib.rc_context(rc):  # type: ignore[arg-type]  # the stubs accept only literal rcParams keys
        # constrained layout: title, axis label, the counts on the right and the legend
        # below the axis label each get their own room, whatever the fonts.
        fig = Figure(figsize=(8, height), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        for key, name, color in series:
            values = [
                (100 * getattr(t, key) / t.total if t.total else 0.0) for _label, t in groups
            ] or [0.0]
            ax.barh(labels, values, left=left, color=color, label=name, height=0.7)
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.set_xlim(0, 100)  # shares of institutions: never beyond 100%
        ax.set_xticks(range(0, 101, 20))
        ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.set_xlabel("机构占比（完成 = 已签署 + 已完成未签署）" if zh else "Share of institutions (finished = signed + finished, not signed)")
        ax.set_title(title)
        ax.tick_params(axis="y", labelsize=8)
        ax.margins(y=0.02)
        # the share finished and the counts, as tick labels on a right-hand axis
        counts = ax.twinx()
        counts.set_ylim(ax.get_ylim())
        counts.set_yticks(range(len(labels)))
        counts.set_yticklabels(
            [
                f"{100 * t.completed // t.total if t.total else 0}%  ({t.completed}/{t.total})"
                for _label, t in groups
            ]
            or [""],
            fontsize=8,
        )
        counts.tick_params(axis="y", length=0)
        for spine in ("top", "right"):
            ax.spines[spine].set_visible(False)
            counts.spines[spine].set_visible(False)
        fig.legend(loc="outside lower center", ncol=4, fontsize=8, frameon=False)
        if png is not None:
            fig.savefig(png, format="png")
        else:
            fig.draw_without_rendering()
    return fig
