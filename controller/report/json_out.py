"""The report as one JSON object, for programs: full precision, English keys in every language.

Human sentences (the tariff and CO2 notes, the period in words, the method) are in the
report's language; everything else is machine values: ISO dates and times with the unit's UTC
offset, numbers unrounded, `null` where a value does not exist.
"""

from __future__ import annotations

import json
from typing import Any

from controller.report.data import Report, Totals
from controller.report.labels import Lang, kind_label, period_text, text

SCHEMA_VERSION = 1


def totals_json(totals: Totals) -> dict[str, Any]:
    """A Totals as JSON values, unrounded."""
    return {
        "kwh": totals.kwh,
        "baseline_kwh": totals.baseline_kwh,
        "saved_kwh": totals.saved_kwh,
        "saved_pct": totals.saved_pct,
        "saved_thb": totals.saved_thb,
        "saved_kg_co2e": totals.saved_kg_co2e,
        "burn_h": totals.burn_h,
        "burn_s": totals.burn_s,
        "scheduled_s": totals.scheduled_s,
        "available_s": totals.available_s,
        "availability_pct": totals.availability_pct,
        "avg_level": totals.avg_level,
        "source": totals.source,
        "modelled_kwh": totals.modelled_kwh,
        "records": totals.records,
        "faults": totals.faults,
    }


def report_json(report: Report, lang: Lang) -> dict[str, Any]:
    """The report as one JSON-ready object: unit, site, period, tariff, CO2 factor, per-zone
    totals, per-zone-per-day rows, faults and events, overall totals."""
    return {
        "report": "energy",
        "version": SCHEMA_VERSION,
        "lang": lang,
        "unit": report.unit_id,
        "site": report.site,
        "timezone": report.timezone,
        "period": {
            "from": report.first.isoformat(),
            "to": report.last.isoformat(),
            "days": report.days,
            "text": period_text(lang, report.first, report.last),
        },
        "tariff": {
            "thb_per_kwh": report.tariff_thb_per_kwh,
            "paid_by": text(lang, "tariff_payer"),
            "note": text(lang, "tariff_note", tariff=report.tariff_thb_per_kwh),
        },
        "co2": {
            "kg_per_kwh": report.co2_kg_per_kwh,
            "source": text(lang, "co2_source"),
            "note": text(lang, "co2_note", co2=report.co2_kg_per_kwh),
        },
        "zones": [
            {
                "id": zone.id,
                "name": zone.label,
                "rated_w": zone.rated_w,
                "baseline_w": zone.baseline_w,
                "configured": zone.configured,
                "totals": totals_json(report.zone_totals[zone.id]),
            }
            for zone in report.zones
        ],
        "days": [
            {"date": row.day.isoformat(), "zone": row.zone.id} | totals_json(row.totals)
            for row in report.rows
        ],
        "faults": [
            {
                "at": event.at.isoformat(timespec="seconds"),
                "zone": event.zone,
                "kind": event.kind,
                "kind_text": kind_label(lang, event.kind),
                "detail": event.detail,
                "fault": event.fault,
            }
            for event in report.events
        ],
        "totals": totals_json(report.total),
        "method": " ".join(
            text(lang, key)
            for key in ("method_meter", "method_baseline", "method_hours", "faults_note")
        ),
    }


def render_json(report: Report, lang: Lang) -> str:
    """The JSON text, indented, UTF-8 characters as they are (Thai is not escaped)."""
    return json.dumps(report_json(report, lang), ensure_ascii=False, indent=2) + "\n"
