"""A stand-in for ARTA and its Firebase account service, served on 127.0.0.1.

It follows /work/shared/reference/arta-api.md: anonymous sign-up, refresh (snake_case
answer), POST /api/v1/text2image with FastAPI-shaped 422s, GET .../{record_id}/status, and
the result pictures themselves. Tokens expire on the fake's own clock, every record follows
a script, faults can be injected, and everything a test may want to assert is counted.

    async with FakeArta() as fake:
        fake.scripts_by_prompt["slow cat"] = RecordScript(queue_polls=2, progress_polls=5)
        async with ArtaClient(fake.settings()) as client:
            ...
        assert fake.signups == 1

Standalone, for pointing the CLI at it:

    python -m tests.fakes.arta_server --port 8081
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import secrets
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from multidict import CIMultiDict

from bot.arta.settings import PUBLIC_API_KEY, ArtaSettings

# The service's list, copied from the reference (the last known list, tgpt 2025-10-03, 96
# names) rather than imported from the client, so that a wrong name in the client's
# catalogue is caught by the fake refusing it. Names dropped since (Anime, Epicrealism-xl,
# Flux Black Ink, tattoo) are refused, as the reference expects the service to do.
STYLES: tuple[str, ...] = (
    "3D Logo", "Abstract Logo", "Anima-pencil-xl", "Anime tattoo", "Anything-xl", "Biomech",
    "Black Ink", "Cheyenne-xl", "Chicano", "Christmas Doll Nano Style",
    "Christmas Postcard Nano Style", "Christmas Poster Nano Style",
    "Cinematic Art", "Combination Logo", "Cor-epica-xl", "Death metal", "Doll Nano Style",
    "Dotwork",
    "Dreamshaper-xl", "Elegant Logo", "Emblem Logo", "Embroidery tattoo", "Epic Logo", "F Anime",
    "F Anime Journey", "F Dalle Mix", "F Dev", "F Dreamscape", "F Epic Realism", "F Face Realism",
    "F Jojoso", "F Koda", "F Midjorney", "F Miniature", "F Pencil", "F Pixel",
    "F Pro", "F Real Anime", "F Realism", "F Retro Anime", "F Retrocomic", "F Softserve",
    "F Super Realism", "F Whimscape", "F2 Pro", "F2 Turbo", "Fantasy Art", "Flame design",
    "Flux", "Futuristic Logo", "GPT4o", "GPT4o Ghibli", "Geometric Logo", "Gradient Logo",
    "Graffiti", "Grunge Logo", "Hand-drawn Logo", "High GPT4o", "Japanese_2", "Juggernaut-xl",
    "Katayama-mix-xl", "Kawaii", "Low Poly", "Mascots Logo", "Medieval", "Mini tattoo",
    "Minimalistic Logo", "Monogram Logo", "Nano Banana Style", "Neo-traditional", "New School",
    "No Style",
    "Old School", "Old school colored", "On limbs black", "On limbs color", "Photographic",
    "Playground-xl",
    "Pony-xl", "Postcard Nano Style", "Poster Nano Style", "Professional",
    "QA_text2image_flux2_turbo", "Random Text",
    "Realistic tattoo", "Realistic-stock-xl", "Red and Black", "RevAnimated", "SDXL 1.0",
    "SDXL L",
    "Seedream Test", "Surrealism", "Trash Polka", "Vincent Van Gogh", "Watercolor",
    "Yamers-realistic-xl",
)  # fmt: skip
# The ARTA Android app's identity as the reference gives it (tgpt's last client), copied
# rather than imported for the same reason. Google's Android key restriction checks the
# package and the signing certificate's SHA-1; the other headers are recorded, not checked.
ANDROID_PACKAGE = "ai.generated.art.maker.image.picture.photo.generator.painting"
ANDROID_CERT = "ADC09FCA89A2CE4D0D139031A2A587FA87EE4155"
FIREBASE_PROJECT_NUMBER = "713239656559"
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "9:21", "21:9")
# The service's own ceilings as the integration guide reports them (8 images, 50 steps).
MAX_IMAGES_NUM = 8
MAX_STEPS = 50
FORM_FIELDS = (
    "prompt",
    "negative_prompt",
    "style",
    "images_num",
    "cfg_scale",
    "steps",
    "aspect_ratio",
    "seed",
)

# Real 16x16 pictures, so a consumer that decodes them (or hands them to Telegram) can.
SAMPLE_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYW"
    "ICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgo"
    "KCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAAQABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcI"
    "CQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRol"
    "JicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ip"
    "qrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAA"
    "AAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLR"
    "ChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaX"
    "mJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEA"
    "PwDl6KKK/RT5g//Z"
)
SAMPLE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAGUlEQVR4nGM8k2bMQApgIkn1qIZRDUNKAwB3awGFRgkd"
    "sgAAAABJRU5ErkJggg=="
)
HTML_ERROR_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)
HTML_UNAVAILABLE_PAGE = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head>"
    "<body><h1>503 Service Temporarily Unavailable</h1></body></html>"
)
HTML_FORBIDDEN_PAGE = (
    "<html><head><title>403 Forbidden</title></head><body>Forbidden</body></html>"
)

SIGNUP_PATH = "/identitytoolkit/v3/relyingparty/signupNewUser"
REFRESH_PATH = "/v1/token"
API_PATH = "/api/v1"

Outcome = Literal["done", "failed", "never"]
StatusFault = Literal["500", "html", "garbage", "reset", "429"]
SubmitFault = Literal["html503", "500", "garbage", "no_record_id", "reset"]
SignupFault = Literal["html503", "400", "html403"]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RecordScript:
    """How one record behaves when polled.

    A record answers IN_QUEUE for `queue_polls` polls, then IN_PROGRESS for `progress_polls`,
    then its outcome. `queue_seconds` / `generation_seconds` add the same phases on the
    fake's clock (for benchmarks); a record moves on only when both its poll count and its
    age allow it. `outcome="never"` stays IN_PROGRESS for ever.
    """

    queue_polls: int = 0
    progress_polls: int = 1
    outcome: Outcome = "done"
    # Per picture, in order; pictures past the tuple's end are not blurred.
    blurred: tuple[bool, ...] = ()
    queue_seconds: float = 0.0
    generation_seconds: float = 0.0
    failure_status: str = "FAILED"
    error_code: str | None = "GENERATION_ERROR"
    error_details: str | None = "the model failed to produce an image"
    # DONE with an empty `response` list, a state the client must not take for success.
    empty_response: bool = False
    # Picture URLs that answer 404.
    broken_images: bool = False
    mime: str = "image/jpeg"
    # Whether the status answer carries the seed back.
    echo_seed: bool = True


@dataclass(slots=True)
class FakeRecord:
    record_id: str
    prompt: str
    form: dict[str, str]
    script: RecordScript
    created_at: float
    polls: int = 0
    image_urls: tuple[str, ...] = ()


class FakeClock:
    """A hand-driven clock; `sleep` advances it instead of waiting, then lets others run."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@dataclass(slots=True)
class _Account:
    uid: str
    refresh_token: str


class FakeArta:
    """The fake service. Knobs are plain attributes and methods; see the module docstring."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.time,
        token_lifetime: float = 3600.0,
        api_key: str = PUBLIC_API_KEY,
        default_script: RecordScript | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = clock
        self.token_lifetime = token_lifetime
        self.api_key = api_key
        self.default_script = default_script or RecordScript()
        self.scripts_by_prompt: dict[str, RecordScript] = {}
        # Real seconds every submit/status answer waits first (e.g. to trip client timeouts).
        self.latency = 0.0
        # Styles the service accepts; narrow it to play a service that retired a model.
        self.styles: set[str] = set(STYLES)
        # Answer 401 to every API call, even with a fresh token (an account ban, say).
        self.always_unauthorized = False
        # Serve pictures chunked, without Content-Length, to exercise streaming size caps.
        self.chunked_images = False
        # As the real key since July 2025: sign-up and refresh without the Android app's
        # package and certificate get Google's 403 API_KEY_ANDROID_APP_BLOCKED. Set to None
        # only to play the key as it was before (nothing in the tests needs that today).
        self.required_app: tuple[str, str] | None = (ANDROID_PACKAGE, ANDROID_CERT)
        # The record_id the DONE answer carries instead of the real one (a hostile service).
        self.reported_record_id: str | None = None

        # Counters and what was received, for assertions.
        self.signups = 0
        self.refreshes = 0
        self.submits = 0
        self.submits_by_prompt: Counter[str] = Counter()
        self.status_polls: Counter[str] = Counter()
        self.image_requests: Counter[str] = Counter()
        self.forms: dict[str, dict[str, str]] = {}
        self.auth_headers: list[str] = []
        # Request headers of every sign-up / refresh / submit / status call, in order.
        # (Header names compare without regard to case, as in HTTP.)
        self.signup_headers: list[CIMultiDict[str]] = []
        self.refresh_headers: list[CIMultiDict[str]] = []
        self.submit_headers: list[CIMultiDict[str]] = []
        self.status_headers: list[CIMultiDict[str]] = []
        self.app_refusals = 0
        self.records: dict[str, FakeRecord] = {}
        self.done_at: dict[str, float] = {}
        self.images: dict[str, tuple[bytes, str]] = {
            "sample.jpg": (SAMPLE_JPEG, "image/jpeg"),
            "sample.png": (SAMPLE_PNG, "image/png"),
        }

        self._id_tokens: dict[str, float] = {}  # id token -> expiry on the fake's clock
        self._accounts: dict[str, _Account] = {}  # refresh token -> account
        self._held: set[str] = set()
        self._status_faults: deque[StatusFault] = deque()
        self._submit_faults: deque[SubmitFault] = deque()
        self._signup_faults: deque[SignupFault] = deque()
        self._transports: set[object] = set()
        self._ids = itertools.count(1)
        self._changed: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._changed = asyncio.Condition()
        app = web.Application(middlewares=[self._track_connection])
        app.router.add_post(SIGNUP_PATH, self._signup)
        app.router.add_post(REFRESH_PATH, self._refresh)
        app.router.add_post(f"{API_PATH}/text2image", self._submit)
        app.router.add_get(f"{API_PATH}/text2image/{{record_id}}/status", self._status)
        app.router.add_get("/images/{name}", self._image)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        # With port 0 the OS picked a free port; the runner knows which.
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeArta:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def settings(self, **overrides: Any) -> ArtaSettings:
        """Client settings aimed at this fake, polling fast so tests on real time stay quick."""
        values: dict[str, Any] = {
            "signup_url": f"{self.base_url}{SIGNUP_PATH}",
            "refresh_url": f"{self.base_url}{REFRESH_PATH}",
            "api_url": f"{self.base_url}{API_PATH}",
            "api_key": self.api_key,
            "poll_min_interval": 0.001,
            "poll_max_interval": 0.02,
            "connect_timeout": 5.0,
            "read_timeout": 5.0,
            "request_timeout": 10.0,
        }
        values.update(overrides)
        return ArtaSettings(**values)

    # -- knobs -----------------------------------------------------------------------------

    def hold(self, key: str) -> None:
        """Keep records (by record id or exact prompt) IN_PROGRESS until release(key)."""
        self._held.add(key)

    def release(self, key: str) -> None:
        self._held.discard(key)

    def fail_status(self, count: int = 1, kind: StatusFault = "500") -> None:
        """The next `count` status checks answer 500 / an HTML page / non-JSON 200 / a reset /
        429 with Retry-After: 3."""
        self._status_faults.extend([kind] * count)

    def fail_submits(self, count: int = 1, kind: SubmitFault = "html503") -> None:
        self._submit_faults.extend([kind] * count)

    def fail_signups(self, count: int = 1, kind: SignupFault = "html503") -> None:
        self._signup_faults.extend([kind] * count)

    def revoke_tokens(self, *, refresh_too: bool = False) -> None:
        """Invalidate every id token (the next API call gets 401), and refresh tokens too."""
        self._id_tokens.clear()
        if refresh_too:
            self._accounts.clear()

    def add_image(self, name: str, data: bytes, content_type: str = "image/jpeg") -> str:
        """Serve `data` at /images/{name}; returns its URL."""
        self.images[name] = (data, content_type)
        return self.image_url(name)

    def image_url(self, name: str) -> str:
        return f"{self.base_url}/images/{name}"

    # -- what happened ---------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Distinct TCP connections clients opened to the fake."""
        return len(self._transports)

    @property
    def total_status_polls(self) -> int:
        return sum(self.status_polls.values())

    def record_for(self, prompt: str) -> FakeRecord | None:
        """The latest record submitted with this exact prompt."""
        found = [r for r in self.records.values() if r.prompt == prompt]
        return found[-1] if found else None

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait (real time) until `predicate()` holds; it is re-checked after every request."""
        assert self._changed is not None, "start() the fake first"
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_for_record(self, prompt: str, within: float = 5.0) -> FakeRecord:
        await self.wait_for(lambda: self.record_for(prompt) is not None, within)
        record = self.record_for(prompt)
        assert record is not None
        return record

    # -- routes ----------------------------------------------------------------------------

    @web.middleware
    async def _track_connection(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # One transport object per TCP connection; keeping a reference keeps ids distinct.
        self._transports.add(request.transport)
        try:
            return await handler(request)
        finally:
            await self._notify()

    async def _signup(self, request: web.Request) -> web.Response:
        self.signups += 1
        self.signup_headers.append(request.headers.copy())
        if request.query.get("key") != self.api_key:
            return _firebase_error(400, "API key not valid. Please pass a valid API key.")
        refused = self._refuse_unknown_app(request, "identitytoolkit.googleapis.com")
        if refused is not None:
            return refused
        if self._signup_faults:
            fault = self._signup_faults.popleft()
            if fault == "400":
                return _firebase_error(400, "OPERATION_NOT_ALLOWED")
            if fault == "html403":  # a proxy's or firewall's own refusal page
                return web.Response(status=403, text=HTML_FORBIDDEN_PAGE, content_type="text/html")
            return web.Response(status=503, text=HTML_UNAVAILABLE_PAGE, content_type="text/html")
        try:
            body = await request.json()
        except ValueError:
            return _firebase_error(400, "INVALID_JSON_PAYLOAD")
        if not isinstance(body, dict) or body.get("clientType") != "CLIENT_TYPE_ANDROID":
            return _firebase_error(400, "MISSING_CLIENT_TYPE")
        account = _Account(uid=_token("uid"), refresh_token=_token("refresh"))
        self._accounts[account.refresh_token] = account
        return web.json_response(
            {
                "kind": "identitytoolkit#SignupNewUserResponse",
                "idToken": self._issue_id_token(),
                "refreshToken": account.refresh_token,
                "expiresIn": f"{self.token_lifetime:.0f}",
                "localId": account.uid,
            }
        )

    async def _refresh(self, request: web.Request) -> web.Response:
        self.refreshes += 1
        self.refresh_headers.append(request.headers.copy())
        if request.query.get("key") != self.api_key:
            return _firebase_error(400, "API key not valid. Please pass a valid API key.")
        refused = self._refuse_unknown_app(request, "securetoken.googleapis.com")
        if refused is not None:
            return refused
        form = await request.post()
        if form.get("grant_type") != "refresh_token":
            return _firebase_error(400, "INVALID_GRANT_TYPE")
        account = self._accounts.get(str(form.get("refresh_token", "")))
        if account is None:
            return _firebase_error(400, "INVALID_REFRESH_TOKEN")
        id_token = self._issue_id_token()
        return web.json_response(
            {
                "access_token": id_token,
                "expires_in": f"{self.token_lifetime:.0f}",
                "token_type": "Bearer",
                "refresh_token": account.refresh_token,
                "id_token": id_token,
                "user_id": account.uid,
                "project_id": "1234567890",
            }
        )

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        self.submits += 1
        self.submit_headers.append(request.headers.copy())
        await self._lag()
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.submits_by_prompt[form.get("prompt", "")] += 1
        if not self._authorized(request):
            return web.json_response({"detail": "Not authenticated"}, status=401)
        if self._submit_faults:
            fault = self._submit_faults.popleft()
            if fault == "no_record_id":
                return web.json_response({"status": "IN_QUEUE"})
            return _fault_response(request, fault)
        errors = _validate(form, self.styles)
        if errors:
            return web.json_response({"detail": errors}, status=422)
        record = self._create_record(form)
        return web.json_response(self._status_body(record, "IN_QUEUE"))

    async def _status(self, request: web.Request) -> web.StreamResponse:
        record_id = request.match_info["record_id"]
        self.status_polls[record_id] += 1
        self.status_headers.append(request.headers.copy())
        await self._lag()
        if not self._authorized(request):
            return web.json_response({"detail": "Not authenticated"}, status=401)
        if self._status_faults:
            return _fault_response(request, self._status_faults.popleft())
        record = self.records.get(record_id)
        if record is None:
            return web.json_response({"detail": "Record not found"}, status=404)
        record.polls += 1
        status = self._phase(record)
        if status == "DONE":
            self.done_at.setdefault(record_id, self.clock())
        return web.json_response(self._status_body(record, status))

    async def _image(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.image_requests[name] += 1
        found = self.images.get(name)
        if found is None:
            return web.Response(status=404, text="not found")
        data, content_type = found
        if not self.chunked_images:
            return web.Response(body=data, content_type=content_type)
        response = web.StreamResponse()
        response.content_type = content_type
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(data), 4096):
            await response.write(data[start : start + 4096])
        await response.write_eof()
        return response

    # -- helpers ---------------------------------------------------------------------------

    def _refuse_unknown_app(self, request: web.Request, service: str) -> web.Response | None:
        if self.required_app is None:
            return None
        package, cert = self.required_app
        sent_package = request.headers.get("X-Android-Package", "")
        sent_cert = request.headers.get("X-Android-Cert", "")
        # Google compares the certificate's SHA-1 without regard to case.
        if sent_package == package and sent_cert.upper() == cert.upper():
            return None
        self.app_refusals += 1
        return web.json_response(android_app_blocked_body(sent_package, service), status=403)

    def _issue_id_token(self) -> str:
        token = _token("id")
        self._id_tokens[token] = self.clock() + self.token_lifetime
        return token

    def _authorized(self, request: web.Request) -> bool:
        # The service wants the raw id token; "Bearer <token>" is not a token it knows.
        header = request.headers.get("Authorization", "")
        self.auth_headers.append(header)
        expiry = self._id_tokens.get(header)
        if self.always_unauthorized:
            return False
        return expiry is not None and self.clock() < expiry

    def _create_record(self, form: dict[str, str]) -> FakeRecord:
        record_id = f"rec-{next(self._ids):05d}-{secrets.token_hex(4)}"
        script = self.scripts_by_prompt.get(form["prompt"], self.default_script)
        extension = "png" if script.mime == "image/png" else "jpg"
        names = [f"{record_id}-{i}.{extension}" for i in range(int(form["images_num"]))]
        if not script.broken_images:
            data = SAMPLE_PNG if extension == "png" else SAMPLE_JPEG
            for name in names:
                self.images[name] = (data, script.mime)
        record = FakeRecord(
            record_id=record_id,
            prompt=form["prompt"],
            form=form,
            script=script,
            created_at=self.clock(),
            image_urls=tuple(self.image_url(name) for name in names),
        )
        self.records[record_id] = record
        self.forms[record_id] = form
        return record

    def _phase(self, record: FakeRecord) -> str:
        script = record.script
        age = self.clock() - record.created_at
        by_polls = _stage(record.polls, script.queue_polls, script.progress_polls)
        by_time = _stage(age, script.queue_seconds, script.generation_seconds, strict=True)
        stage = min(by_polls, by_time)
        held = record.record_id in self._held or record.prompt in self._held
        if held or script.outcome == "never":
            stage = min(stage, 1)
        if stage == 0:
            return "IN_QUEUE"
        if stage == 1:
            return "IN_PROGRESS"
        return "DONE" if script.outcome == "done" else script.failure_status

    def _status_body(self, record: FakeRecord, status: str) -> dict[str, Any]:
        script = record.script
        done = status == "DONE"
        failed = status not in {"IN_QUEUE", "IN_PROGRESS", "DONE"}
        response = []
        if done and not script.empty_response:
            response = [
                {
                    "name": url.rsplit("/", 1)[-1],
                    "url": url,
                    "isBlur": i < len(script.blurred) and script.blurred[i],
                    "MIME": script.mime,
                }
                for i, url in enumerate(record.image_urls)
            ]
        return {
            "record_id": (self.reported_record_id if done else None) or record.record_id,
            "status": status,
            "response": response,
            "error_code": script.error_code if failed else None,
            "error_details": script.error_details if failed else None,
            "seed": int(record.form["seed"]) if script.echo_seed else None,
        }

    async def _lag(self) -> None:
        if self.latency > 0:
            await asyncio.sleep(self.latency)

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()


def _stage(progress: float, queue: float, running: float, *, strict: bool = False) -> int:
    """0 queued, 1 running, 2 finished, after `progress` polls (or seconds, strict)."""
    if strict:
        if progress < queue:
            return 0
        return 1 if progress < queue + running else 2
    if progress <= queue:
        return 0
    return 1 if progress <= queue + running else 2


def _validate(form: dict[str, str], styles: set[str]) -> list[dict[str, Any]]:
    """FastAPI/pydantic-v2-shaped errors for the text2image form, all of them at once."""
    errors: list[dict[str, Any]] = []

    def error(name: str, kind: str, msg: str, **ctx: Any) -> None:
        entry: dict[str, Any] = {"type": kind, "loc": ["body", name], "msg": msg}
        entry["input"] = form.get(name)
        if ctx:
            entry["ctx"] = ctx
        errors.append(entry)

    for name in FORM_FIELDS:
        if name not in form:
            error(name, "missing", "Field required")
    if "prompt" in form and not form["prompt"].strip():
        error(
            "prompt", "string_too_short", "String should have at least 1 character", min_length=1
        )
    if "style" in form and form["style"] not in styles:
        error("style", "value_error", f"Value error, Style '{form['style']}' is not supported")
    if "aspect_ratio" in form and form["aspect_ratio"] not in ASPECT_RATIOS:
        ratio = form["aspect_ratio"]
        error(
            "aspect_ratio", "value_error", f"Value error, Aspect ratio '{ratio}' is not supported"
        )
    for name, low, high in (("images_num", 1, MAX_IMAGES_NUM), ("steps", 1, MAX_STEPS)):
        if name in form:
            _check_int(form[name], name, low, high, error)
    if "seed" in form:
        _check_int(form["seed"], "seed", 0, None, error)
    if "cfg_scale" in form:
        try:
            float(form["cfg_scale"])
        except ValueError:
            error(
                "cfg_scale",
                "float_parsing",
                "Input should be a valid number, unable to parse string as a number",
            )
    return errors


def _check_int(
    raw: str, name: str, low: int, high: int | None, error: Callable[..., None]
) -> None:
    try:
        value = int(raw)
    except ValueError:
        error(
            name,
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        )
        return
    if value < low:
        error(
            name, "greater_than_equal", f"Input should be greater than or equal to {low}", ge=low
        )
    elif high is not None and value > high:
        error(name, "less_than_equal", f"Input should be less than or equal to {high}", le=high)


def _fault_response(request: web.Request, fault: str) -> web.Response:
    if fault == "reset":
        # Drop the TCP connection without an answer, as a crashing proxy would.
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)
    if fault == "html":
        return web.Response(status=502, text=HTML_ERROR_PAGE, content_type="text/html")
    if fault == "html503":
        return web.Response(status=503, text=HTML_UNAVAILABLE_PAGE, content_type="text/html")
    if fault == "429":
        headers = {"Retry-After": "3"}
        return web.json_response({"detail": "Too Many Requests"}, status=429, headers=headers)
    if fault == "garbage":
        # A 200 that is not JSON: a captive portal, a truncated body, a confused proxy.
        return web.Response(status=200, text="<html>OK</html>", content_type="application/json")
    return web.json_response({"detail": "Internal Server Error"}, status=500)


def android_app_blocked_body(package: str, service: str) -> dict[str, Any]:
    """Google's answer to a key restricted to an Android app, called by another client
    (google.rpc error model: ErrorInfo reason API_KEY_ANDROID_APP_BLOCKED)."""
    shown = package or "<empty>"
    message = f"Requests from this Android client application {shown} are blocked."
    return {
        "error": {
            "code": 403,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "forbidden"}],
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_ANDROID_APP_BLOCKED",
                    "domain": "googleapis.com",
                    "metadata": {
                        "consumer": f"projects/{FIREBASE_PROJECT_NUMBER}",
                        "service": service,
                        "androidPackage": shown,
                    },
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                },
            ],
        }
    }


def _firebase_error(status: int, message: str) -> web.Response:
    body = {"error": {"code": status, "message": message, "errors": [{"message": message}]}}
    return web.json_response(body, status=status)


def _token(kind: str) -> str:
    return f"fake-{kind}-{secrets.token_urlsafe(24)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake ARTA on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token-lifetime", type=float, default=3600.0)
    parser.add_argument("--queue-seconds", type=float, default=1.0)
    parser.add_argument("--generation-seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    script = RecordScript(
        progress_polls=0,
        queue_seconds=args.queue_seconds,
        generation_seconds=args.generation_seconds,
    )
    fake = FakeArta(
        host=args.host, port=args.port, token_lifetime=args.token_lifetime, default_script=script
    )
    try:
        asyncio.run(_serve(fake))
    except KeyboardInterrupt:
        print("stopped")


async def _serve(fake: FakeArta) -> None:
    async with fake:
        settings = fake.settings()
        print(f"fake ARTA on {fake.base_url}; point the CLI at it with:")
        print(f"  export ARTA_AUTH_URL={settings.signup_url}")
        print(f"  export ARTA_REFRESH_URL={settings.refresh_url}")
        print(f"  export ARTA_API_URL={settings.api_url}")
        print(json.dumps({"images": f"{fake.base_url}/images/sample.jpg"}), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    main()
