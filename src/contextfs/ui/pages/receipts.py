"""Verify a receipt: upload one, and the store re-derives its prompt and compares the bytes.

Invariants this module owns:

* checking a receipt is a read, as ``contextfs verify-receipt`` is: it needs
  no ``--write`` and no CSRF field (a forged cross-site upload learns nothing
  it can read back, and the token gate still stands in front);
* so that a visitor with read access cannot make the server hold or compute
  more than a page: the upload is read no further than
  :data:`MAX_RECEIPT_BYTES` (413 beyond), and a receipt whose budget passes
  :data:`~.context.MAX_BUDGET` is refused (400) before anything is re-derived;
* a malformed file is a 400 page naming what is wrong, never a traceback.
"""

from __future__ import annotations

from typing import Final

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive

from ...errors import InvalidInputError
from ...expand.receipt import Receipt, ReceiptVerification
from ...repo import Repository
from ..app import UI, Page
from .context import MAX_BUDGET, ContextForm, moment, render_page

#: The largest receipt file taken: one line of JSON, a few KiB even with thousands of ids.
MAX_RECEIPT_BYTES: Final = 1024 * 1024
#: Room in an upload's body for the multipart boundaries and part headers around the file.
MULTIPART_ROOM: Final = 64 * 1024


def check_receivable(receipt: Receipt) -> Receipt:
    """``receipt``, if this page will re-derive it: a receipt may name any budget.

    Raises:
        InvalidInputError: its budget is absent or above :data:`MAX_BUDGET`.
    """
    if receipt.budget is None or receipt.budget > MAX_BUDGET:
        raise InvalidInputError(
            f"this page re-derives receipts with budgets up to {MAX_BUDGET:,} tokens, and this"
            f" one's is {receipt.budget!r}: check it with `contextfs verify-receipt`"
        )
    return receipt


def verify_uploaded(repo: Repository, receipt: Receipt) -> ReceiptVerification:
    """:meth:`Repository.verify_receipt`, with a malformed ``params`` an input error.

    :meth:`Receipt.from_json` checks that ``params`` is JSON, not its shape;
    re-deriving a turn indexes into ``params["turn"]`` as written, so a file
    edited by hand fails there with a ``KeyError`` or ``TypeError``. That is
    bad input from the visitor, not a fault of the server.

    Raises:
        InvalidInputError: the receipt cannot be re-derived from what it says.
    """
    try:
        return repo.verify_receipt(receipt)
    except (KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"the receipt's params are malformed: {type(exc).__name__} {exc}"
        ) from None


def capped_receive(receive: Receive, limit: int) -> Receive:
    """``receive``, refusing a request body once it passes ``limit`` bytes.

    Checked as the body streams in, so a body without a Content-Length (or
    with a false one) is cut off too, before the multipart parser spools it.
    """
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise too_large()
        return message

    return capped


def too_large() -> HTTPException:
    return HTTPException(413, f"a receipt file is at most {MAX_RECEIPT_BYTES // 1024:,} KiB")


async def uploaded_receipt(request: Request) -> bytes:
    """The bytes of the ``receipt`` file a verify form uploads.

    Raises:
        HTTPException: 413 when the upload is larger than a receipt may be.
        InvalidInputError: it is not a multipart upload, or holds no file.
    """
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        raise InvalidInputError("upload the receipt as a file (multipart/form-data)")
    limit = MAX_RECEIPT_BYTES + MULTIPART_ROOM
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large()  # refused before a byte of the body is read
    upload = Request(request.scope, capped_receive(request.receive, limit))
    async with upload.form(max_files=1, max_fields=4) as form:
        part = form.get("receipt")
        if not isinstance(part, UploadFile):
            raise InvalidInputError("choose a receipt file to verify")
        data = await part.read(MAX_RECEIPT_BYTES + 1)
    if len(data) > MAX_RECEIPT_BYTES:
        raise too_large()
    if not data.strip():
        raise InvalidInputError("the receipt file is empty")
    return data


async def receipt_verify(ui: UI, request: Request) -> Response:
    receipt = check_receivable(Receipt.from_json(await uploaded_receipt(request)))
    result: ReceiptVerification = await ui.run(lambda repo: verify_uploaded(repo, receipt))
    return render_page(
        ui, request, ContextForm(), verification=result, when=moment(receipt.now), view=None
    )


ROUTES: list[tuple[str, Page, list[str]]] = [
    ("/context/verify", receipt_verify, ["POST"]),
]
