"""How to reach ARTA and how hard to lean on it; public values are the defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.arta.download import private_origins

PUBLIC_API_KEY = "AIzaSyB3-71wG0fIt0shj0ee4fvx1shcjJHGrrQ"
# The Android app's Dalvik agent, as tgpt's last ARTA client (2025-07 .. 2026-07) sent it.
DEFAULT_USER_AGENT = "Dalvik/2.1.0 (Linux; U; Android 15;)"

Headers = tuple[tuple[str, str], ...]

# The ARTA Android app's identity. Since July 2025 the Firebase key answers 403
# API_KEY_ANDROID_APP_BLOCKED to a sign-up without it; tgpt's "Fix arta" (2025-07-06) added
# exactly these and kept them until it dropped ARTA. Sent on sign-up and on token refresh.
# When the app's identity changes (new signing certificate, package), override them in the
# config, [arta.headers.auth], rather than waiting for a release.
ANDROID_APP_HEADERS: Headers = (
    ("X-Android-Package", "ai.generated.art.maker.image.picture.photo.generator.painting"),
    ("X-Android-Cert", "ADC09FCA89A2CE4D0D139031A2A587FA87EE4155"),
    ("X-Firebase-Gmpid", "1:713239656559:android:f9e37753e9ee7324cb759a"),
    ("X-Firebase-Client", "H4sIAAAAAAAA_6tWykhNLCpJSk0sKVayio7VUSpLLSrOzM9TslIyUqoFAFyivEQfAAAA"),
    ("X-Client-Version", "Android/Fallback/X22003001/FirebaseCore-Android"),
    ("User-Agent", DEFAULT_USER_AGENT),
)
# The app's okHttp agents, as tgpt sent them on submit and on status checks (two app
# versions, 4.18.6 and 3.23.12, exactly as tgpt had them).
SUBMIT_HEADERS: Headers = (("User-Agent", "AiArt/4.18.6 okHttp/4.12.0 Android R"),)
STATUS_HEADERS: Headers = (
    ("User-Agent", "AiArt/3.23.12 okHttp/4.12.0 Android VANILLA_ICE_CREAM"),
)


@dataclass(frozen=True, slots=True)
class ArtaSettings:
    signup_url: str = "https://www.googleapis.com/identitytoolkit/v3/relyingparty/signupNewUser"
    refresh_url: str = "https://securetoken.googleapis.com/v1/token"
    # The base that `/text2image` and `/text2image/{record_id}/status` hang from.
    api_url: str = "https://img-gen-prod.ai-arta.com/api/v1"
    # Full overrides for the two generation URLs; `{record_id}` is filled into the status one.
    submit_url: str | None = None
    status_url: str | None = None
    # Firebase's web key, sent as `?key=` on sign-up and refresh.
    api_key: str = PUBLIC_API_KEY
    # The session's default agent (picture downloads); the calls below send their own.
    user_agent: str = DEFAULT_USER_AGENT
    extra_headers: Headers = field(default_factory=tuple)
    # Per call, over the session's headers: sign-up and refresh, submit, status.
    auth_headers: Headers = ANDROID_APP_HEADERS
    submit_headers: Headers = SUBMIT_HEADERS
    status_headers: Headers = STATUS_HEADERS
    proxy: str | None = None
    # Open connections to all ARTA hosts together; requests beyond wait for a free one.
    pool_limit: int = 32
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    # Ceiling on one whole request, waiting for a free pooled connection included.
    request_timeout: float = 60.0
    # Overall deadline for one job's polling.
    poll_deadline: float = 300.0
    # The floor between status checks of one record: at most one that finds it still running
    # per this many seconds (on average); a check that learned jobs say will most likely find
    # it done may come sooner, never sooner than a quarter of it (schedule.gap_floor).
    poll_min_interval: float = 1.0
    poll_max_interval: float = 10.0
    # Status checks a second to ARTA from this client, all jobs together (0: no bound).
    max_status_rate: float = 200.0
    # Bounded backoff for transient trouble (5xx, HTML pages, resets) on status checks.
    transient_retries: int = 5
    download_max_bytes: int = 10 * 1024 * 1024

    @property
    def text2image_url(self) -> str:
        return self.submit_url or f"{self.api_url.rstrip('/')}/text2image"

    @property
    def private_image_origins(self) -> frozenset[tuple[str, int]]:
        """Loopback/private origins the upstream itself is configured on (a test or a
        self-hosted set-up): its picture links may point there; no other private address."""
        urls = [self.api_url, self.submit_url or "", self.status_url or ""]
        return private_origins([url for url in urls if url])

    def status_url_for(self, record_id: str) -> str:
        template = self.status_url or f"{self.api_url.rstrip('/')}/text2image/{{record_id}}/status"
        return template.format(record_id=record_id)


def merge_headers(defaults: Headers, overrides: dict[str, str] | None) -> Headers:
    """`defaults` with `overrides` laid over them; names match without regard to case, and
    an empty value drops the header (e.g. to stop sending one the app no longer sends)."""
    if not overrides:
        return defaults
    lowered = {name.lower(): (name, value) for name, value in overrides.items()}
    merged: list[tuple[str, str]] = []
    for name, value in defaults:
        if name.lower() in lowered:
            # The built-in spelling of the name stays, as the app writes it.
            value = lowered.pop(name.lower())[1]
        merged.append((name, value))
    merged.extend(lowered.values())
    return tuple((name, value) for name, value in merged if value)
