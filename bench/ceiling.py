"""The ceiling: a bare Starlette app returning a small JSON body, served like the provider.

One uvicorn worker with uvloop and httptools, no access log: what a Python ASGI server can do at best
on this machine, so the provider's figures can be read as a fraction of it.

Usage: python bench/ceiling.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_BODY = b'{"status":"ok","service":"ceiling"}'


async def hello(request: Request) -> Response:
    return Response(_BODY, media_type="application/json")


app = Starlette(routes=[Route("/", hello, methods=["GET"])])


def main() -> None:
    port = int(sys.argv[1])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        server_header=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
