"""How the console's JSON API answers the case store's errors: one mapping for every handler
that calls the store, so that none of its errors reaches aiohttp as a bare 500.

=============================================  =====  ======================================
error                                          HTTP   why
=============================================  =====  ======================================
``ConcurrentUpdate``, ``CaseClosed``           409    the case's state: reload, or reopen
``InvalidTransition``, ``UnknownDepartment``,  400    the request is wrong (the message says
``ValueError`` (bad values)                           which field and why)
``CaseNotFound``                               404
``CaseStoreUnavailable``                       503    the database is away: try again
any other ``CaseStoreError``                   503    the store could not do it (wrong secret
                                                      key, a day's numbers used up …); the
                                                      message says what, the log has the
                                                      traceback
=============================================  =====  ======================================
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from aiohttp import web
from pydantic import ValidationError

from cases.errors import (
    CaseClosed,
    CaseNotFound,
    CaseStoreError,
    CaseStoreUnavailable,
    ConcurrentUpdate,
    InvalidTransition,
    UnknownDepartment,
)

log = logging.getLogger("hotline.web.store")


@contextlib.contextmanager
def store_answers(what: str) -> Iterator[None]:
    """Run a handler's store calls; ``what`` ("save case 2026…") names them in the answer."""
    try:
        yield
    except (ConcurrentUpdate, CaseClosed) as e:
        raise web.HTTPConflict(text=str(e)) from None
    except ValidationError as e:   # the store's own check of a value: one line per field
        raise web.HTTPBadRequest(text="; ".join(
            f"{'.'.join(map(str, x['loc'])) or 'value'}: {x['msg']}" for x in e.errors()),
        ) from None
    except (InvalidTransition, UnknownDepartment, ValueError) as e:
        raise web.HTTPBadRequest(text=str(e)) from None
    except CaseNotFound as e:
        raise web.HTTPNotFound(text=str(e)) from None
    except CaseStoreUnavailable:
        raise web.HTTPServiceUnavailable(text="case store unavailable; try again") from None
    except CaseStoreError as e:
        log.exception("%s: the case store failed", what)
        raise web.HTTPServiceUnavailable(
            text=f"the case store could not {what}: {e}") from None
