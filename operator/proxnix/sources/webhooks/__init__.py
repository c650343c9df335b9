"""Push webhooks, pure: who sent a request, whether its signature verifies, what it pushed, and to which repository.

No I/O and no aiohttp or kubernetes imports: `proxnix.webhook` feeds these functions headers and raw bytes.
Modules: `providers` (sender detection), `signatures` (HMAC / token checks), `payloads` (body decoding),
`parsing` (per-server payload shapes), `events` (the parsed values), `urls` (canonical repository keys),
`matching` (which pushed ref a GitRepo follows).
"""
