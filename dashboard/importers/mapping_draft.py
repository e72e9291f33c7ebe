"""A first mapping file proposed from a REDCap data dictionary (``study-monitor mapping draft``).

The proposal reads field names, types, validations and choices only (no records): a yes/no field
named ``incl..`` or ``excl..`` is a criterion, a date field named for consent is the consent date,
the instrument named for adverse events holds them, and so on. What it cannot tell is left as a
comment for the person to decide; identifying fields are never proposed. The result is a TOML
text that ``mapping.parse_mapping`` reads as it is: a draft to check, not a guess to trust.
"""

import re
from collections.abc import Callable

from dashboard.importers.edc import FieldDef, checkbox_column

_DATE_VALIDATIONS = re.compile(r"^date(time)?(_seconds)?_(ymd|mdy|dmy)$|^date$")
_NUMBER_VALIDATIONS = {"integer", "number", "number_1dp", "number_2dp", "float"}
# Vital signs a baseline table usually shows: name pattern -> (TESTCD, TEST, unit).
_VITALS = (
    (re.compile(r"^(height|ht|height_cm)$"), "HEIGHT", "Height", "cm"),
    (re.compile(r"^(weight|wt|weight_kg)$"), "WEIGHT", "Weight", "kg"),
    (re.compile(r"^bmi$"), "BMI", "Body Mass Index", "kg/m2"),
    (re.compile(r"^(sbp|sysbp|systolic.*)$"), "SYSBP", "Systolic Blood Pressure", "mmHg"),
    (re.compile(r"^(dbp|diabp|diastolic.*)$"), "DIABP", "Diastolic Blood Pressure", "mmHg"),
)


# A unit at the end of a field's label: "Alanine aminotransferase (U/L)".
_UNIT_IN_LABEL = re.compile(r"\s*\(([^()]+)\)\s*$")


def _is_date(f: FieldDef) -> bool:
    return bool(f.validation and _DATE_VALIDATIONS.match(f.validation))


def _toml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _first(fields: list[FieldDef], test: Callable[[FieldDef], bool]) -> FieldDef | None:
    return next((f for f in fields if test(f)), None)


def _named(*words: str) -> Callable[[FieldDef], bool]:
    pattern = re.compile("|".join(words))
    return lambda f: bool(pattern.search(f.name.lower()))


def draft_mapping(fields: dict[str, FieldDef], *, dictionary: str) -> str:
    """The proposed mapping of the project whose data dictionary ``dictionary`` defines
    ``fields`` (record id first)."""
    usable = [f for f in fields.values() if not f.identifier]
    record_id = next(iter(fields))
    dates = [f for f in usable if _is_date(f)]
    used: set[str] = {record_id}
    lines = [
        f"# Mapping drafted by `study-monitor mapping draft {dictionary}`: CHECK EVERY LINE.",
        "# Keys left as comments are the ones the data dictionary could not decide.",
        "# The documented example: dashboard/studies/NCT06466850-redcap/mapping.toml",
        "",
        "[study]",
        'id = "CHANGE-ME"                 # the study id the data are loaded into',
        '# title = "..."',
        "# planned_enrollment = 0",
        '# blinding = "NONE"              # NONE (open label), SINGLE, DOUBLE ...',
        "",
        "[subject]",
        f'id = "{record_id}"',
        '# usubjid_prefix = ""            # subject code = prefix + record id',
        'site = "redcap_data_access_group"  # or a field naming the site; or site_id = "01"',
    ]
    if dropped := [f.name for f in fields.values() if f.identifier]:
        lines.append(f"# identifying fields, never read: {', '.join(dropped)}")

    def propose(key: str, found: FieldDef | None) -> None:
        if found is None:
            lines.append(f'# {key} = ""')
        else:
            used.add(found.name)
            lines.append(f'{key} = "{found.name}"')

    sex = _first(usable, lambda f: bool(f.choices) and _named(r"^(sex|gender)")(f))
    if sex is not None:
        used.add(sex.name)
        values = ", ".join(
            f"{_toml(label)} = {_toml(label.strip()[:1].upper().replace('W', 'F'))}"
            for label in sex.choices.values()
            if label.strip()[:1].upper() in ("F", "M", "W")
        )
        lines.append(f'sex = {{ field = "{sex.name}", values = {{ {values} }} }}')
    else:
        lines.append('# sex = { field = "", values = { Female = "F", Male = "M" } }')
    propose("age", _first(usable, lambda f: f.name.lower() in ("age", "age_years", "age_yrs")))
    propose("consent_date", _first(dates, _named("consent", "icf")))
    propose("screening_date", _first(dates, _named("scr", "screen")))
    enrollment = _first(dates, _named("enrol", "random", "rand_"))
    first_dose = _first(dates, _named("dose", "inj", "treat", "first_"))
    propose("enrollment_date", enrollment)
    propose("first_dose_date", first_dose)
    if enrollment is None and first_dose is not None:
        lines[-2] = (
            f'enrollment_date = "{first_dose.name}"   # CHECK: no enrollment date field; the first '
            "dose is taken as enrollment"
        )

    arm = _first(usable, lambda f: bool(f.choices) and _named(r"^(arm|group|random|treat)")(f))
    lines += ["", "[arm]"]
    if arm is not None:
        used.add(arm.name)
        values = ", ".join(
            f"{_toml(label)} = {_toml(re.sub(r'[^A-Z0-9]', '', label.upper())[:8] or code)}"
            for code, label in arm.choices.items()
        )
        lines += [f'field = "{arm.name}"', f"values = {{ {values} }}   # answer -> arm code"]
    else:
        lines += [
            "# one group: the arm every enrolled subject is in",
            'code = "ARM1"',
            'name = "Treatment"',
        ]

    disposition = _first(
        usable,
        lambda f: bool(f.choices) and _named(r"^ds_", "dispos", "complet", "status", "withdr")(f),
    )
    if disposition is not None:
        used.add(disposition.name)
        values = ", ".join(
            f"{_toml(label)} = {_toml(label.upper())}" for label in disposition.choices.values()
        )
        ds_date = _first(
            [d for d in dates if d.form == disposition.form] or dates,
            _named(r"^ds_", "dispos", "complet", "withdr", "end", "date"),
        )
        lines += ["", "[disposition]", f'field = "{disposition.name}"']
        if ds_date is not None:
            used.add(ds_date.name)
            lines.append(f'date = "{ds_date.name}"')
        lines.append(f"values = {{ {values} }}   # answer -> CDISC term (SCREEN FAILURE ...)")

    criteria = [
        f
        for f in usable
        if f.field_type in ("yesno", "truefalse") and re.match(r"^(incl|inc|excl|exc|ie_)", f.name)
    ]
    if criteria:
        lines += ["", "# Eligibility: one field per criterion, and the answer that means NOT met."]
    for f in criteria:
        used.add(f.name)
        inclusion = f.name.lower().startswith("inc")
        lines += [
            "[[criteria]]",
            f"code = {_toml(f.name.upper())}",
            f'category = "{"INCLUSION" if inclusion else "EXCLUSION"}"',
            f'field = "{f.name}"',
            f"text = {_toml(f.label or f.name)}",
            f'not_met = "{"No" if inclusion else "Yes"}"   # CHECK: the answer when it is not met',
            "",
        ]

    # A checkbox of the criteria not met: each option is a criterion, not met when checked.
    checklist = _first(
        usable,
        lambda f: (
            f.field_type == "checkbox" and _named("crit", "elig", r"^ie_", r"^sf_", "fail")(f)
        ),
    )
    if checklist is not None and not criteria:
        used.add(checklist.name)
        lines += [
            "",
            f"# Eligibility: the options of {checklist.name!r}, the criteria not met.",
        ]
        for code, label in checklist.choices.items():
            exclusion = bool(re.match(r"\s*(ex|excl)", label, re.IGNORECASE))
            lines += [
                "[[criteria]]",
                f"code = {_toml(re.sub(r'[^A-Z0-9]', '', label.upper())[:8] or code)}",
                f'category = "{"EXCLUSION" if exclusion else "INCLUSION"}"   # CHECK',
                f'field = "{checkbox_column(checklist.name, code)}"',
                f"text = {_toml(label)}",
                'not_met = "Checked"',
                "",
            ]

    ae_form = next((f.form for f in usable if re.search(r"adverse|^ae(_|$)", f.form.lower())), None)
    if ae_form is not None:
        ae_fields = [f for f in usable if f.form == ae_form]
        ae_dates = [f for f in ae_fields if _is_date(f)]
        lines += [
            "",
            "# Adverse events: a repeating instrument, one event per instance.",
            "[adverse_events]",
        ]
        lines.append(f'instrument = "{ae_form}"')
        for key, found in (
            ("term", _first(ae_fields, _named("term", "event", "desc"))),
            ("decoded_term", _first(ae_fields, _named("pt$", "pref", "decod", "llt"))),
            ("body_system", _first(ae_fields, _named("soc", "body", "system"))),
            ("start_date", _first(ae_dates, _named("start", "onset", "st"))),
            ("end_date", _first(ae_dates, _named("end", "stop", "resol"))),
            ("severity", _first(ae_fields, _named("sev", "intens"))),
            ("grade", _first(ae_fields, _named("grade", "ctcae", "toxgr"))),
            ("serious", _first(ae_fields, _named("serious", "sae"))),
            ("related", _first(ae_fields, _named("rel", "causal"))),
            ("outcome", _first(ae_fields, _named("outcome", "out"))),
            ("action", _first(ae_fields, _named("action", "acn"))),
        ):
            if found is not None and found.name not in used:
                used.add(found.name)
                lines.append(f'{key} = "{found.name}"')
            elif key == "term":
                lines.append('term = "CHANGE-ME"              # the field naming the event')
            else:
                lines.append(f'# {key} = ""')

    dv_form = next(
        (f.form for f in usable if re.search(r"deviat|^pd(_|$)|^dv(_|$)", f.form.lower())), None
    )
    if dv_form is not None:
        dv_fields = [f for f in usable if f.form == dv_form]
        lines += [
            "",
            "# Protocol deviations: a repeating instrument, one deviation per instance; a category",
            "# answer such as Major / Minor says whether one is important.",
            "[deviations]",
            f'instrument = "{dv_form}"',
        ]
        for key, found in (
            ("term", _first(dv_fields, _named("term", "desc", "deviat"))),
            ("category", _first(dv_fields, _named("cat", "class", "major", "sever"))),
            ("date", _first([f for f in dv_fields if _is_date(f)], _named("date", "dt"))),
        ):
            if found is not None and found.name not in used:
                used.add(found.name)
                lines.append(f'{key} = "{found.name}"')
            elif key == "term":
                lines.append('term = "CHANGE-ME"              # the field naming the deviation')
            else:
                lines.append(f'# {key} = ""')

    lab_form = next((f.form for f in usable if re.search(r"^lab|_lab", f.form.lower())), None)
    if lab_form is not None:
        lab_fields = [f for f in usable if f.form == lab_form and f.name not in used]
        lab_date = _first([f for f in lab_fields if _is_date(f)], lambda f: True)
        lines += [
            "",
            "# Laboratory results: a field per test, at every event the instrument is filled at.",
            "# CHECK each test's code (CDISC LBTESTCD: ALT, AST, BILI, CREAT, HGB ...), unit and",
            "# normal range (a number, or by sex: low = { F = 12.0, M = 13.5 }).",
            "[labs]",
            f'date = "{lab_date.name}"' if lab_date else '# date = ""   # default: the visit date',
        ]
        if lab_date is not None:
            used.add(lab_date.name)
        for f in lab_fields:
            if f.validation not in _NUMBER_VALIDATIONS:
                continue
            used.add(f.name)
            stated = _UNIT_IN_LABEL.search(f.label or "")
            name = _UNIT_IN_LABEL.sub("", f.label or "") or f.name
            lines += [
                "[[labs.tests]]",
                f'field = "{f.name}"',
                f"code = {_toml(re.sub(r'[^A-Z0-9]', '', f.name.upper())[:8] or f.name)}",
                f"test = {_toml(name)}",
                f"unit = {_toml(stated[1])}" if stated else '# unit = ""',
                "# low = 0",
                "# high = 0",
            ]

    visit_date = _first(dates, _named("visit"))
    lines += [
        "",
        "# Visits: the date asked at each event, and the visit each event is (the data dictionary",
        "# does not list the events: take their unique names from the project's Define My Events).",
        "# [visits]",
        f'# date = "{visit_date.name if visit_date else ""}"',
        "# [visits.events]",
        '# screening_arm_1 = { number = 1, name = "SCREENING", day = -14 }',
    ]
    if visit_date is not None:
        used.add(visit_date.name)

    numbers = [
        f
        for f in usable
        if f.validation in _NUMBER_VALIDATIONS and f.name not in used and f.form != ae_form
    ]
    lines += ["", "# Baseline characteristics: numeric fields as findings (VS, LB, QS, SC, MK)."]
    for f in numbers:
        vital = next((v for v in _VITALS if v[0].match(f.name.lower())), None)
        if vital is not None:
            _pattern, code, test, unit = vital
            lines += [
                "[[baseline]]",
                f'field = "{f.name}"',
                'domain = "VS"',
                f'code = "{code}"',
                f'test = "{test}"',
                f'unit = "{unit}"',
                "",
            ]
        else:
            code = re.sub(r"[^A-Z0-9]", "", f.name.upper())[:8]
            lines.append(
                f'# [[baseline]] field = "{f.name}", domain = "SC", code = "{code}", '
                f"test = {_toml(f.label or f.name)}"
            )
    return "\n".join(lines).rstrip() + "\n"
