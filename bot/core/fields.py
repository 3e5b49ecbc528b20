"""The fields (领域) an institution works in.

The ids are stable and used in checklists, the roster and the database. The list
follows the supervised fields of notice 国市监检测发〔2023〕90号 part 二, plus the
livelihood and product-risk fields its part 一 singles out for special campaigns.
A roster may name a field by id, by its Chinese name or by a short alias.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    id: str
    zh_CN: str
    en: str
    aliases: tuple[str, ...] = ()

    def label(self, locale: str) -> str:
        return self.zh_CN if locale.startswith("zh") else self.en


FIELDS: tuple[Field, ...] = (
    Field("natural-resources", "自然资源检验检测", "Natural resources", ("自然资源",)),
    Field("eco-environment", "生态环境监测", "Eco-environment monitoring", ("生态环境", "环境监测")),
    Field("carbon-verification", "碳排放核查", "Carbon-emission verification", ("碳排放",)),
    Field("motor-vehicle", "机动车检验", "Motor-vehicle inspection", ("机动车", "机动车检验检测")),
    Field("water-quality", "水利水质监测", "Water-resources and water-quality monitoring", ("水质监测", "水利")),
    Field("import-export", "进出口商品检验", "Import and export commodity inspection", ("进出口",)),
    Field("medical-protective", "医疗器械防护用品检验检测", "Medical protective supplies", ("医疗器械防护用品",)),
    Field("ppe", "个人防护装备检验", "Personal protective equipment", ("个人防护装备",)),
    Field("food", "食品检验", "Food", ("食品",)),
    Field("refined-oil", "成品油检验", "Refined oil products", ("成品油",)),
    Field(
        "network-security",
        "网络关键设备和网络安全专用产品检验",
        "Network key equipment and network-security products",
        ("网络安全", "网络关键设备"),
    ),
    Field(
        "dangerous-goods-tanks",
        "常压液体危险货物罐体出厂检验",
        "Atmospheric-pressure liquid dangerous-goods tanks",
        ("危险货物罐体", "罐体"),
    ),
    Field("building-materials", "建筑材料检验", "Building materials", ("建筑材料", "建材")),
    Field("water-supply", "供排水检验", "Water supply and drainage", ("供排水",)),
    Field("other", "其他", "Other", ("其它",)),
)

FIELD_IDS: frozenset[str] = frozenset(f.id for f in FIELDS)
_BY_ID = {f.id: f for f in FIELDS}
_LOOKUP: dict[str, str] = {}
for _f in FIELDS:
    for _name in (_f.id, _f.zh_CN, _f.en.lower(), *_f.aliases):
        _LOOKUP[_name.strip().lower()] = _f.id


def get_field(field_id: str) -> Field:
    """The field with this id; KeyError if there is none."""
    return _BY_ID[field_id]


def resolve_field(name: str) -> str | None:
    """The field id for an id, Chinese name, English name or alias; None if unknown."""
    return _LOOKUP.get(name.strip().lower())


def field_label(field_id: str, locale: str) -> str:
    field = _BY_ID.get(field_id)
    return field.label(locale) if field else field_id
