"""The report's words in English and Thai, and dates as each reader expects them.

Thai dates use the Buddhist era (BE = CE + 543) and Thai month names, as Thai official
documents do: 21 November 2026 is "21 พฤศจิกายน 2569".
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

Lang = Literal["en", "th"]
LANGS: tuple[Lang, ...] = ("en", "th")

BUDDHIST_ERA_OFFSET = 543

THAI_MONTHS = (
    "มกราคม",
    "กุมภาพันธ์",
    "มีนาคม",
    "เมษายน",
    "พฤษภาคม",
    "มิถุนายน",
    "กรกฎาคม",
    "สิงหาคม",
    "กันยายน",
    "ตุลาคม",
    "พฤศจิกายน",
    "ธันวาคม",
)
THAI_MONTHS_SHORT = (
    "ม.ค.",
    "ก.พ.",
    "มี.ค.",
    "เม.ย.",
    "พ.ค.",
    "มิ.ย.",
    "ก.ค.",
    "ส.ค.",
    "ก.ย.",
    "ต.ค.",
    "พ.ย.",
    "ธ.ค.",
)
EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# Health note kinds that are not faults: they are listed with the faults but not counted.
NOT_FAULTS = frozenset({"recovered", "config_reloaded", "energy_summarised"})

_TEXT: dict[str, tuple[str, str]] = {
    # key: (English, Thai)
    "title": ("Street lighting energy report", "รายงานพลังงานไฟฟ้าไฟส่องสว่างถนน"),
    "unit": ("Unit", "ตู้ควบคุม"),
    "site": ("Site", "สถานที่"),
    "period": ("Period", "ช่วงเวลา"),
    "days": ("days", "วัน"),
    "generated": ("Generated", "จัดทำเมื่อ"),
    "timezone": ("time zone", "เขตเวลา"),
    "key_figures": ("Key figures", "ตัวเลขสำคัญ"),
    "summary": ("Summary by zone", "สรุปตามโซน"),
    "summary_energy": ("Energy and savings by zone", "พลังงานและการประหยัดตามโซน"),
    "summary_service": (
        "Burning hours, availability and faults by zone",
        "ชั่วโมงส่องสว่าง ความพร้อมใช้งาน และเหตุขัดข้องตามโซน",
    ),
    "fig_used": ("Energy used", "พลังงานที่ใช้"),
    "fig_baseline": ("Baseline", "พลังงานฐาน"),
    "fig_saved": ("Saved", "พลังงานที่ประหยัดได้"),
    "fig_saved_pct": ("Saved: {pct} % of the baseline", "ประหยัดได้ {pct} % ของพลังงานฐาน"),
    "fig_cost": ("Avoided cost at the reference tariff", "ค่าไฟฟ้าที่หลีกเลี่ยงได้ (อัตราอ้างอิง)"),
    "fig_co2": ("Avoided emissions", "การปล่อยก๊าซเรือนกระจกที่ลดได้"),
    "fig_burn": ("Burning hours, all zones added up", "ชั่วโมงส่องสว่าง รวมทุกโซน"),
    "fig_availability": ("Availability", "ความพร้อมใช้งาน"),
    "fig_faults": ("Faults", "เหตุขัดข้อง"),
    "hours": ("h", "ชม."),
    "zone": ("Zone", "โซน"),
    "total": ("Total", "รวม"),
    "kwh": ("Energy used (kWh)", "พลังงานที่ใช้ (kWh)"),
    "baseline_kwh": ("Baseline (kWh)", "พลังงานฐาน (kWh)"),
    "saved_kwh": ("Saved (kWh)", "พลังงานที่ประหยัดได้ (kWh)"),
    "saved_pct": ("Saved (%)", "ประหยัดได้ (%)"),
    "saved_thb": ("Avoided cost (THB)", "ค่าไฟฟ้าที่หลีกเลี่ยงได้ (บาท)"),
    "saved_kg": ("Avoided emissions (kg CO2e)", "การปล่อยก๊าซเรือนกระจกที่ลดได้ (kgCO2e)"),
    "burn_h": ("Burning hours", "ชั่วโมงส่องสว่าง"),
    "availability": ("Availability (%)", "ความพร้อมใช้งาน (%)"),
    "avg_level": ("Average level while lit (%)", "ระดับความสว่างเฉลี่ยขณะเปิด (%)"),
    "source": ("Source", "แหล่งข้อมูล"),
    "faults": ("Faults", "เหตุขัดข้อง"),
    "src_meter": ("meter", "มิเตอร์"),
    "src_model": ("modelled", "ประมาณจากแบบจำลอง"),
    "src_mixed": ("mixed: {share} % of kWh modelled", "ผสม: {share} % ของ kWh มาจากแบบจำลอง"),
    "src_none": ("no records", "ไม่มีข้อมูล"),
    "chart_energy": ("Energy used against baseline, per day", "พลังงานที่ใช้เทียบกับพลังงานฐาน รายวัน"),
    "chart_profile": (
        "A typical night: average level by time of night",
        "คืนโดยเฉลี่ย: ระดับความสว่างเฉลี่ยตามเวลาของคืน",
    ),
    "chart_cumulative": ("Cumulative savings over the period", "พลังงานที่ประหยัดได้สะสมตลอดช่วงเวลา"),
    "caption_energy": (
        "Total over the period: {used} kWh used against a baseline of {baseline} kWh.",
        "รวมตลอดช่วงเวลา: ใช้ไป {used} kWh เทียบกับพลังงานฐาน {baseline} kWh",
    ),
    "caption_profile": (
        "Each zone's mean level in each {minutes}-minute slot, over every night of the "
        "period; 0 means the lamps were off.",
        "ระดับความสว่างเฉลี่ยของแต่ละโซนในแต่ละช่วง {minutes} นาที จากทุกคืนในช่วงเวลา 0 หมายถึงโคมปิด",
    ),
    "legend_used": ("used", "ที่ใช้"),
    "legend_baseline": ("baseline", "พลังงานฐาน"),
    "legend_saved": ("saved", "ประหยัดได้สะสม"),
    "axis_kwh": ("kWh", "kWh"),
    "axis_level": ("level %", "ระดับ %"),
    "no_data": ("No energy records in this period.", "ไม่มีข้อมูลพลังงานในช่วงเวลานี้"),
    "events": ("Faults and events", "เหตุขัดข้องและเหตุการณ์"),
    "no_events": ("No faults or events were recorded.", "ไม่มีเหตุขัดข้องหรือเหตุการณ์ที่บันทึกไว้"),
    "time": ("Time", "เวลา"),
    "kind": ("Kind", "ประเภท"),
    "detail": ("Detail", "รายละเอียด"),
    "whole_unit": ("whole unit", "ทั้งตู้"),
    "tariff_note": (
        "Avoided cost is priced at a reference tariff of {tariff} THB/kWh. Local bodies are "
        "often not billed for street lighting: the state, through the Provincial Electricity "
        "Authority (PEA), bears the cost. The baht figure is therefore the cost avoided at the "
        "reference tariff, not money saved from the municipality's own budget.",
        "ค่าไฟฟ้าที่หลีกเลี่ยงได้คำนวณที่อัตราค่าไฟฟ้าอ้างอิง {tariff} บาท/kWh "
        "องค์กรปกครองส่วนท้องถิ่นมักไม่ได้รับใบแจ้งหนี้ค่าไฟฟ้าไฟส่องสว่างถนน "
        "โดยรัฐผ่านการไฟฟ้าส่วนภูมิภาค (กฟภ.) เป็นผู้รับภาระค่าไฟฟ้า "
        "ตัวเลขเป็นบาทจึงเป็นค่าใช้จ่ายที่หลีกเลี่ยงได้ตามอัตราอ้างอิง "
        "ไม่ใช่เงินที่ประหยัดได้จากงบประมาณของเทศบาลโดยตรง",
    ),
    "co2_note": (
        "Avoided emissions use the Thailand grid emission factor of {co2} kg CO2e/kWh "
        "(Thailand Greenhouse Gas Management Organization, TGO).",
        "การปล่อยก๊าซเรือนกระจกที่ลดได้คำนวณด้วยค่าการปล่อยก๊าซเรือนกระจกของระบบไฟฟ้าประเทศไทย "
        "{co2} kgCO2e/kWh (องค์การบริหารจัดการก๊าซเรือนกระจก (องค์การมหาชน), อบก.)",
    ),
    "method_title": ("How these numbers are made", "ตัวเลขเหล่านี้ได้มาอย่างไร"),
    "method_meter": (
        "Energy marked 'meter' is the difference of an energy meter's own counter over each "
        "interval, shared between the zones on that meter in proportion to their modelled "
        "power. Energy marked 'modelled' is estimated from the luminaires' rated power and "
        "dimming level where no meter measures it, and is labelled as such everywhere.",
        "พลังงานที่ระบุว่า 'มิเตอร์' คือผลต่างของตัวนับพลังงานของมิเตอร์ในแต่ละช่วงเวลา "
        "แบ่งให้โซนที่ใช้มิเตอร์เดียวกันตามสัดส่วนกำลังไฟฟ้าจากแบบจำลอง "
        "พลังงานที่ระบุว่า 'ประมาณจากแบบจำลอง' ประมาณจากกำลังไฟฟ้าพิกัดของโคมและระดับการหรี่ไฟ "
        "ในกรณีที่ไม่มีมิเตอร์วัด และระบุไว้ทุกแห่งในรายงาน",
    ),
    "method_baseline": (
        "Baseline is what each zone would have used at its baseline power (the lamps the "
        "donation replaced, where known; otherwise the LED luminaires' rated power at full "
        "output), with no dimming and no motion control, for as long as the schedule wanted "
        "the lamps on. Savings are baseline minus energy used.",
        "พลังงานฐานคือพลังงานที่แต่ละโซนจะใช้ที่กำลังไฟฟ้าฐาน (โคมเดิมที่ถูกเปลี่ยนออก หากทราบ "
        "มิฉะนั้นใช้กำลังไฟฟ้าพิกัดของโคม LED ที่ความสว่างเต็มที่) โดยไม่หรี่ไฟและไม่ใช้เซนเซอร์ตรวจจับ"
        "การเคลื่อนไหว ตลอดเวลาที่ตารางเวลากำหนดให้เปิดไฟ พลังงานที่ประหยัดได้คือพลังงานฐานลบพลังงานที่ใช้",
    ),
    "method_hours": (
        "Burning hours are the hours with the lamps on at any level. Availability is the share "
        "of the hours the schedule wanted the lamps on during which they were lit as scheduled "
        "('-' when nothing was scheduled). The average level is the mean dimming level while "
        "the lamps were on. A record belongs to the local date on which its interval starts.",
        "ชั่วโมงส่องสว่างคือจำนวนชั่วโมงที่โคมเปิดอยู่ไม่ว่าระดับใด ความพร้อมใช้งานคือสัดส่วนของชั่วโมง"
        "ที่ตารางเวลากำหนดให้เปิดไฟซึ่งโคมติดสว่างตามกำหนดจริง ('-' เมื่อไม่มีการกำหนดให้เปิด) "
        "ระดับความสว่างเฉลี่ยคือระดับการหรี่ไฟเฉลี่ยขณะโคมเปิด ข้อมูลแต่ละรายการนับเป็นของวันที่"
        "ตามเวลาท้องถิ่นที่ช่วงเวลานั้นเริ่มต้น",
    ),
    "faults_note": (
        "'Faults' counts health events other than recoveries, configuration reloads and "
        "records summarised by day; "
        "those of the whole unit (such as a meter offline) count in the total only.",
        "'เหตุขัดข้อง' นับเหตุการณ์ที่ระบบตรวจพบ ยกเว้นการกลับมาทำงานปกติ การโหลดการตั้งค่าใหม่ "
        "และการสรุปข้อมูลเป็นรายวัน "
        "เหตุการณ์ของทั้งตู้ (เช่น มิเตอร์ไม่ตอบสนอง) นับเฉพาะในยอดรวม",
    ),
    "co2_source": (
        "Thailand grid emission factor (TGO)",
        "ค่าการปล่อยก๊าซเรือนกระจกของระบบไฟฟ้าประเทศไทย (อบก.)",
    ),
    "tariff_payer": (
        "the state, through the Provincial Electricity Authority (PEA)",
        "รัฐ ผ่านการไฟฟ้าส่วนภูมิภาค (กฟภ.)",
    ),
}

_KINDS: dict[str, tuple[str, str]] = {
    "lamp_failure": ("lamp failure", "โคมไฟเสีย"),
    "day_burner": ("lit by day", "ไฟเปิดค้างเวลากลางวัน"),
    "cycling": ("cycling (on and off)", "ไฟติดดับซ้ำ"),
    "meter_offline": ("meter offline", "มิเตอร์ไม่ตอบสนอง"),
    "driver_fault": ("output fault", "อุปกรณ์ควบคุมขัดข้อง"),
    "clock_unsynced": ("clock not synchronised", "นาฬิกายังไม่ได้ตั้งเวลา"),
    "recovered": ("recovered", "กลับมาทำงานปกติ"),
    "config_reloaded": ("configuration reloaded", "โหลดการตั้งค่าใหม่"),
    "energy_summarised": (
        "records summarised by day (disk nearly full)",
        "สรุปข้อมูลพลังงานเป็นรายวัน (พื้นที่จัดเก็บใกล้เต็ม)",
    ),
}


def text(lang: Lang, key: str, **values: object) -> str:
    """The report's text `key` in `lang`, with `{name}` fields filled from `values`."""
    english, thai = _TEXT[key]
    chosen = thai if lang == "th" else english
    return chosen.format(**values) if values else chosen


def text_keys() -> frozenset[str]:
    """Every text key (tests check both languages have each)."""
    return frozenset(_TEXT)


def kind_label(lang: Lang, kind: str) -> str:
    """A health note kind in words; an unknown kind is shown as it is stored."""
    pair = _KINDS.get(kind)
    if pair is None:
        return kind.replace("_", " ")
    return pair[1] if lang == "th" else pair[0]


def is_fault(kind: str) -> bool:
    """Whether a health note of this kind counts as a fault (recoveries and reloads do not)."""
    return kind not in NOT_FAULTS


def long_date(lang: Lang, day: date) -> str:
    """A date in words: '21 November 2026', or in Thai '21 พฤศจิกายน 2569' (Buddhist era)."""
    if lang == "th":
        return f"{day.day} {THAI_MONTHS[day.month - 1]} {day.year + BUDDHIST_ERA_OFFSET}"
    return f"{day.day} {EN_MONTHS[day.month - 1]} {day.year}"


def short_date(lang: Lang, day: date) -> str:
    """A date for chart axes: '21 Nov', or in Thai '21 พ.ย.'."""
    if lang == "th":
        return f"{day.day} {THAI_MONTHS_SHORT[day.month - 1]}"
    return f"{day.day} {EN_MONTHS[day.month - 1][:3]}"


def period_text(lang: Lang, first: date, last: date) -> str:
    """An inclusive period in words, e.g. '21 November 2026 to 23 November 2026'."""
    if first == last:
        return long_date(lang, first)
    joint = " ถึง " if lang == "th" else " to "
    return long_date(lang, first) + joint + long_date(lang, last)


def date_time(lang: Lang, moment: datetime) -> str:
    """A local date and time for the faults list: '21 November 2026 22:05'."""
    return f"{long_date(lang, moment.date())} {moment:%H:%M}"


def number(value: float, decimals: int) -> str:
    """A number for people: thousands separators, fixed decimals, '-0.00' shown as '0.00'."""
    shown = f"{value:,.{decimals}f}"
    if shown.startswith("-") and not any(c in "123456789" for c in shown):
        shown = shown[1:]
    return shown
