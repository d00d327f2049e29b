"""CSV downloads that stream: the ledger's (the cost review, a team's review) and the audit
trail's. Rows come from a database cursor and leave in chunks, so a million of them never sit
in memory, and no cell is ever read by a spreadsheet as a formula."""

import contextlib
import csv
import io
from collections.abc import Callable, Iterable, Iterator

from django.db import connection, transaction
from django.http import StreamingHttpResponse

ROWS_PER_CHUNK = 1000  # rows per piece sent: big enough to be cheap to send


def csv_cell(value) -> str:
    """A cell a spreadsheet will never read as a formula (CSV injection): text from people (a
    prompt, a team's name, a summary holding either) could start with = + - @."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_response(
    *, header: list[str], rows: Callable[[], Iterable], filename: str
) -> StreamingHttpResponse:
    """`rows()` (a queryset's iterator, say) written under `header`, as a download named
    `filename`. Each row must already be a sequence of cells (through csv_cell where people
    wrote the text)."""
    response = StreamingHttpResponse(_chunks(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _chunks(header, rows) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    # Inside a transaction PostgreSQL's server-side cursor hands rows over as the query finds
    # them. Outside one, Django must declare it WITH HOLD, and PostgreSQL then runs the whole
    # query before sending the first row (2 s for a month of a million jobs). Not on SQLite,
    # whose transactions here take the write lock (settings.py): the workers could not record
    # a cost until the download ended.
    postgres = connection.vendor == "postgresql"
    with transaction.atomic() if postgres else contextlib.nullcontext():
        for count, row in enumerate(rows(), 1):
            writer.writerow(row)
            if count % ROWS_PER_CHUNK == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()
