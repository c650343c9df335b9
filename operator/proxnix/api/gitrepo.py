"""GitRepo: a git repository holding a proxnix flake, the ref to follow, and what was fetched and applied from it."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from proxnix.api.conditions import Condition
from proxnix.api.kinds import AGE_COLUMN, KindInfo, PrinterColumn, ready_columns
from proxnix.api.meta import ApiModel, K8sName, LocalObjectReference, StatusModel, cel_rule
from proxnix.api.scalars import CommitSha, Duration

# ssh://[user@]host[:port]/path, scp-like user@host:path, https://host/path, file:///path — no whitespace or quotes.
GIT_URL_PATTERN = (
    r"^(ssh://([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~/+-]+"
    r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/+-]+"
    r"|https?://([A-Za-z0-9._%-]+@)?[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~/+-]+"
    r"|file:///[A-Za-z0-9._~/+-]+)$"
)
# A git ref name component list, as `git check-ref-format` allows them (simplified, and never starting with '-').
REF_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._/+-]*$"
# A relative folder inside the repository; no `..` components.
FLAKE_PATH_PATTERN = r"^(\.|[A-Za-z0-9_][A-Za-z0-9._+-]*(/[A-Za-z0-9_][A-Za-z0-9._+-]*)*)$"


class GitRef(ApiModel):
    """Exactly one of branch, tag or commit."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["branch"]}, {"required": ["tag"]}, {"required": ["commit"]}],
            **cel_rule(
                "[has(self.branch), has(self.tag), has(self.commit)].filter(x, x).size() == 1",
                "exactly one of branch, tag or commit must be set",
            ),
        }
    )

    branch: str | None = Field(
        default=None,
        pattern=REF_NAME_PATTERN,
        max_length=255,
        description="Branch to follow (its head is fetched on each push or interval).",
    )
    tag: str | None = Field(
        default=None, pattern=REF_NAME_PATTERN, max_length=255, description="Tag to check out."
    )
    commit: CommitSha | None = Field(default=None, description="A fixed commit (40 lowercase hex digits).")

    @model_validator(mode="after")
    def _exactly_one(self) -> GitRef:
        given = [name for name in ("branch", "tag", "commit") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"exactly one of branch, tag or commit must be set (got {given or 'none'})")
        return self


class WebhookSpec(ApiModel):
    """How push webhooks for this repository are verified."""

    secret_ref: LocalObjectReference = Field(
        description=(
            "A Secret with key `token`: the shared secret of the git server's webhook (HMAC key, or GitLab's token)."
        ),
    )


class GitRepoSpec(ApiModel):
    """A repository with a flake that defines NixOS images (`nixosConfigurations`) and VMs (`proxnix`)."""

    url: str = Field(
        pattern=GIT_URL_PATTERN,
        max_length=2048,
        description="Repository URL: ssh://, scp-like git@host:path, https:// or file://.",
    )
    ref: GitRef = Field(
        default_factory=lambda: GitRef(branch="main"),
        description="The branch, tag or commit to deploy. Defaults to branch main.",
        json_schema_extra={"default": {"branch": "main"}},
    )
    secret_ref: LocalObjectReference | None = Field(
        default=None,
        description=(
            "A Secret with keys `identity` (SSH private key) and `known_hosts`, or `username` and `password` "
            "(https)."
        ),
    )
    flake_path: str = Field(
        default=".",
        pattern=FLAKE_PATH_PATTERN,
        max_length=1024,
        description="Folder in the repository that holds flake.nix, relative to its root.",
    )
    interval: Duration = Field(
        default="5m", description="How often to poll the repository (a fallback to webhooks)."
    )
    suspend: bool = Field(default=False, description="Stop fetching and applying while true.")
    prune: bool = Field(
        default=True,
        description="Delete ProxmoxVMs this GitRepo created that are no longer in the flake.",
    )
    default_node: K8sName | None = Field(
        default=None,
        description="ProxmoxNode for VMs whose definition names no node.",
    )
    webhook: WebhookSpec | None = Field(
        default=None,
        description="Push webhook verification. Without it, webhooks for this repository are refused.",
    )


class BuiltImage(StatusModel):
    """An image built from the flake."""

    name: str = Field(description="nixosConfigurations attribute the image was built from.")
    store_path: str = Field(default="", description="Nix store path of the image.")
    sha256: str = Field(default="", description="sha256 of the image file.")


class InventoryEntry(StatusModel):
    """A ProxmoxVM this GitRepo owns."""

    name: str = Field(description="Name of the ProxmoxVM object.")
    vmid: int = Field(description="Proxmox VM ID.")
    node: str = Field(default="", description="ProxmoxNode of the VM.")


class PlanSummary(StatusModel):
    """What the last apply changed."""

    revision: str = Field(default="", description="Commit the plan was made for.")
    created: int = Field(default=0, description="ProxmoxVMs created.")
    updated: int = Field(default=0, description="ProxmoxVMs whose spec changed.")
    unchanged: int = Field(default=0, description="ProxmoxVMs left as they were.")
    pruned: int = Field(default=0, description="ProxmoxVMs deleted because they left the flake.")


class GitRepoStatus(StatusModel):
    """What was fetched, built and applied."""

    observed_generation: int = Field(default=0, description="The .metadata.generation last reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, SourceFetched, FetchFailed, BuildFailed, Reconciling, Stalled.",
    )
    last_fetched_revision: str = Field(default="", description="Commit last fetched.")
    last_applied_revision: str = Field(default="", description="Commit whose VMs were last applied.")
    last_handled_reconcile_at: str = Field(
        default="",
        description="The value of the proxnix.io/requested-at annotation last handled.",
    )
    images: list[BuiltImage] = Field(
        default_factory=list, description="Images built for the applied revision."
    )
    inventory: list[InventoryEntry] = Field(default_factory=list, description="ProxmoxVMs this GitRepo owns.")
    last_plan: PlanSummary | None = Field(default=None, description="Summary of the last apply.")


INFO = KindInfo(
    kind="GitRepo",
    plural="gitrepos",
    singular="gitrepo",
    short_names=("gitrepo", "grepo"),
    description="A git repository with a proxnix flake: NixOS images and the VMs that run them.",
    spec_model=GitRepoSpec,
    status_model=GitRepoStatus,
    printer_columns=(
        PrinterColumn("URL", "string", ".spec.url", "Repository URL."),
        PrinterColumn("Revision", "string", ".status.lastAppliedRevision", "Commit last applied."),
        *ready_columns(),
        PrinterColumn(
            "Status",
            "string",
            '.status.conditions[?(@.type=="Ready")].message',
            "Message of the Ready condition.",
        ),
        AGE_COLUMN,
    ),
)
