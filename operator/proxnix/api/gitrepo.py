"""GitRepo: a git repository holding a proxnix flake, the ref to follow, and what was fetched and applied from it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from proxnix.api.conditions import Condition, ConditionType
from proxnix.api.kinds import AGE_COLUMN, KindInfo, PrinterColumn, ready_columns
from proxnix.api.meta import ApiModel, K8sName, LocalObjectReference, StatusModel, cel_rule
from proxnix.api.scalars import CommitSha, Duration
from proxnix.api.summarize import Readiness

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


class GitRepoProgress(StrEnum):
    """Reasons of the GitRepo's Reconciling condition: the step in progress (a build can take minutes)."""

    FETCHING = "Fetching"
    EVALUATING = "Evaluating"
    BUILDING = "Building"
    APPLYING = "Applying"


class GitRepoDeletionPolicy(StrEnum):
    """What happens to a GitRepo's ProxmoxVMs when the GitRepo is deleted (as Flux's Kustomization `deletionPolicy`)."""

    ORPHAN = "Orphan"
    DELETE = "Delete"


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
    prune_limit: int | None = Field(
        default=None,
        ge=0,
        le=100_000,
        description=(
            "The most ProxmoxVMs one revision may prune without confirmation. Default: half of the GitRepo's "
            "VMs. A revision that would prune more, or every VM, is held until the annotation "
            "proxnix.io/confirm-prune names it."
        ),
    )
    deletion_policy: GitRepoDeletionPolicy = Field(
        default=GitRepoDeletionPolicy.ORPHAN,
        description=(
            "When the GitRepo is deleted: Orphan keeps its ProxmoxVMs (and their VMs) running, free to be "
            "adopted by a later GitRepo of the same name (their proxnix.io/gitrepo label); Delete deletes the ProxmoxVMs (each VM then follows its own "
            "deletionPolicy)."
        ),
    )
    submodules: bool = Field(
        default=False, description="Fetch and check out git submodules (with the same credentials)."
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
    file: str = Field(default="", description="The qcow2 file in the store path.")
    sha256: str = Field(default="", description="sha256 of the image file.")


class InventoryEntry(StatusModel):
    """A ProxmoxVM this GitRepo owns."""

    name: str = Field(description="Name of the ProxmoxVM object.")
    vmid: int = Field(description="Proxmox VM ID.")
    node: str = Field(default="", description="ProxmoxNode of the VM.")


class BlockedVM(StatusModel):
    """A VM the plan did not (fully) apply, and why."""

    name: str = Field(description="Name of the ProxmoxVM.")
    reason: str = Field(description="Why it was left as it is.")


class PlanSummary(StatusModel):
    """The last plan: the ProxmoxVM names in each bucket."""

    revision: str = Field(default="", description="Commit the plan was made for.")
    created: list[str] = Field(default_factory=list, description="ProxmoxVMs created.")
    updated: list[str] = Field(default_factory=list, description="ProxmoxVMs whose spec changed in place.")
    reimaged: list[str] = Field(default_factory=list, description="ProxmoxVMs given a new image.")
    pruned: list[str] = Field(
        default_factory=list, description="ProxmoxVMs deleted because they left the flake."
    )
    unchanged: list[str] = Field(default_factory=list, description="ProxmoxVMs left as they were.")
    blocked: list[BlockedVM] = Field(
        default_factory=list,
        description="ProxmoxVMs not (fully) applied: owned by someone else, protected, being deleted.",
    )
    held: str = Field(
        default="",
        description="Why the whole revision is held (a prune over the limit waiting for confirmation).",
    )


class GitRepoStatus(StatusModel):
    """What was fetched, built and applied."""

    observed_generation: int = Field(default=0, description="The .metadata.generation last reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description=(
            "Ready, Reconciling (with the step in progress: fetching, evaluating, building, applying), Stalled, "
            "SourceFetched, FetchFailed, BuildFailed, Applied."
        ),
    )
    last_fetched_revision: str = Field(default="", description="Commit last fetched.")
    last_applied_revision: str = Field(default="", description="Commit whose VMs were last applied.")
    last_applied_message: str = Field(default="", description="Subject line of that commit's message.")
    last_handled_reconcile_at: str = Field(
        default="",
        description="The value of the proxnix.io/requested-at annotation last handled.",
    )
    images: list[BuiltImage] = Field(
        default_factory=list, description="Images built for the applied revision."
    )
    inventory: list[InventoryEntry] = Field(default_factory=list, description="ProxmoxVMs this GitRepo owns.")
    last_plan: PlanSummary | None = Field(default=None, description="The last plan, with names per bucket.")


READINESS = Readiness(depends_on=(ConditionType.SOURCE_FETCHED, ConditionType.APPLIED))
"""Ready is True when the followed ref's head was fetched and applied, and (said by the reconcile as a problem
until then) every owned ProxmoxVM is Ready for the applied revision; see `proxnix.api.summarize`."""


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
