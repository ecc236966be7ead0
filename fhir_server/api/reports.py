"""HTTP side of the committees' report: ``GET|POST [base]/$second-opinion-report``.

HTTP only: read ``start``/``end`` (query string, or for POST a Parameters body with ``valueDate``s), pick the
representation, and answer what :mod:`fhir_server.second_opinion.reports` computes. The representation is the
MeasureReport as FHIR JSON, or the same table as CSV when the client asks for ``text/csv`` (``Accept``, or
``_format=csv`` / ``_format=text/csv``, which wins as for every FHIR interaction). Accept ranges are read in the
order given (quality values are not weighed); anything neither JSON nor CSV is a 406.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from fhir_server.api.media import check_acceptable, fhir_response, media_type_of
from fhir_server.api.parameters import read_parameters
from fhir_server.api.registry import OperationRegistration
from fhir_server.api.rest import add_operation
from fhir_server.errors import bad_request
from fhir_server.api.second_opinion import catalog_of
from fhir_server.second_opinion.reports import (
    REPORT_OPERATION,
    ReportPeriod,
    plan_time_zones,
    report_csv,
    second_opinion_report,
)

CSV_MEDIA_TYPE = "text/csv"
CSV_FORMAT_VALUES = frozenset({"csv", CSV_MEDIA_TYPE})
PERIOD_PARAMETERS = ("start", "end")


def wants_csv(request: Request) -> bool:
    """True when the client asks for CSV; otherwise the usual JSON negotiation applies (406 if it cannot)."""
    requested_format = request.query_params.get("_format")
    if requested_format is not None and media_type_of(requested_format) in CSV_FORMAT_VALUES:
        return True
    if requested_format is None:
        for media_range in (media_type_of(part) for part in request.headers.get("accept", "").split(",")):
            if media_range == CSV_MEDIA_TYPE:
                return True
            if media_range:
                break  # the first range the client names decides
    check_acceptable(request)
    return False


def period_from_parameters(parameters: dict[str, Any]) -> ReportPeriod:
    """``start``/``end`` of a Parameters body (``valueDate``); another value type or a parameter given twice is
    a 400."""
    values: dict[str, Any] = {}
    for index, parameter in enumerate(parameters.get("parameter") or []):
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if name not in PERIOD_PARAMETERS:
            continue
        where = f"Parameters.parameter[{index}]"
        if name in values:
            raise bad_request(f"parameter {name!r} is given more than once", where)
        if not isinstance(parameter.get("valueDate"), str):
            raise bad_request(f"parameter {name!r} takes a valueDate (YYYY-MM-DD)", f"{where}.valueDate")
        values[name] = parameter["valueDate"]
    return ReportPeriod.parse(*(values.get(name) for name in PERIOD_PARAMETERS), where="Parameters.parameter.")


def period_from_query(request: Request) -> ReportPeriod:
    for name in PERIOD_PARAMETERS:
        if len(request.query_params.getlist(name)) > 1:
            raise bad_request(f"parameter {name!r} is given more than once", name)
    return ReportPeriod.parse(*(request.query_params.get(name) for name in PERIOD_PARAMETERS))


async def report_for(app: Any, period: ReportPeriod) -> dict[str, Any]:
    """The report of ``period`` as the caller may see it: the one path of this operation and the report page."""
    return await second_opinion_report(app.state.store, period, app.state.clock(), plan_time_zones(catalog_of(app)))


async def _answer(request: Request, period: ReportPeriod, csv: bool) -> Response:
    report = await report_for(request.app, period)
    if not csv:
        return fhir_response(report)
    filename = f"second-opinion-report_{period.start.isoformat()}_{period.end.isoformat()}.csv"
    return Response(
        report_csv(report),
        media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def report_get(request: Request) -> Response:
    """``GET [base]/$second-opinion-report?start=YYYY-MM-DD&end=YYYY-MM-DD``."""
    csv = wants_csv(request)
    return await _answer(request, period_from_query(request), csv)


async def report_post(request: Request) -> Response:
    """``POST [base]/$second-opinion-report`` with a Parameters body (``start``, ``end`` as ``valueDate``)."""
    csv = wants_csv(request)
    parameters = await read_parameters(request)
    return await _answer(request, period_from_parameters(parameters), csv)


def register(app: FastAPI) -> None:
    """Mount the operation (GET and POST) and record it for ``/metadata``."""
    add_operation(
        app,
        "/$second-opinion-report",
        {"GET": report_get, "POST": report_post},
        OperationRegistration(
            name="second-opinion-report",
            definition=REPORT_OPERATION,
            documentation="Quarterly report of second-opinion decisions by reason, routing tier, physician group "
            "and plan, overdue ones apart: a summary MeasureReport, or CSV with Accept: text/csv",
        ),
        tags=("Second opinion",),
    )
