"""What the tests' local HTTP server (the `http_server` fixture of conftest.py) sends for a path."""


class Reply:
    """What the local server sends for one path: `body`, under a Content-Length of `announce` bytes when
    given (more than the body: the connection is then cut, as a download that breaks half way)."""

    def __init__(self, body: bytes, announce: int | None = None):
        self.body, self.announce = body, announce
