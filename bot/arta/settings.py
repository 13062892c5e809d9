"""How to reach ARTA and how hard to lean on it; public values are the defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

PUBLIC_API_KEY = "AIzaSyB3-71wG0fIt0shj0ee4fvx1shcjJHGrrQ"
# A Dalvik agent like the Android app's; gpt4free sent none and worked, tgpt sends this shape.
DEFAULT_USER_AGENT = "Dalvik/2.1.0 (Linux; U; Android 13; Pixel 7 Build/TQ3A.230805.001)"


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
    user_agent: str = DEFAULT_USER_AGENT
    extra_headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    proxy: str | None = None
    # Open connections to all ARTA hosts together; requests beyond wait for a free one.
    pool_limit: int = 32
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    # Ceiling on one whole request, waiting for a free pooled connection included.
    request_timeout: float = 60.0
    # Overall deadline for one job's polling.
    poll_deadline: float = 300.0
    # Never poll one record more often than this, whatever the schedule predicts.
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

    def status_url_for(self, record_id: str) -> str:
        template = self.status_url or f"{self.api_url.rstrip('/')}/text2image/{{record_id}}/status"
        return template.format(record_id=record_id)
