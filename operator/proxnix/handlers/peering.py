"""Which kopf peering the operator joins, decided before kopf starts, and said out loud.

kopf pauses an operator whose mandatory peering has no object, without a word. proxnix decides first:
- `--standalone`: no peering;
- `--peering NAME`: mandatory. While its object is missing the operator logs an error naming what to apply, and its
  `/healthz` fails (so a readiness probe keeps it out of rotation); it acts once the object exists;
- neither (auto): the peering `proxnix` when kopf's peering CRD and that object exist, else standalone with a
  warning that says how to enable peering.
`decide` is the pure rule; `detect` asks the API (discovery and one get per peering object); `PeeringWatch` keeps
checking a missing mandatory peering and feeds the health probe.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from proxnix.adapters.kube import KubeApi, KubeError

KOPF_GROUP = "kopf.dev"
KOPF_VERSION = "v1"
DEFAULT_PEERING = "proxnix"
HOW_TO_APPLY = "apply manifests/base/peering.yaml (part of `kubectl apply -k manifests/`)"
RECHECK_SECONDS = 10.0
REPEAT_ERROR_SECONDS = 60.0

log = logging.getLogger("proxnix.peering")


@dataclass(frozen=True)
class PeeringFacts:
    """What the API has: whether kopf's peering CRD is served, and which peering objects are missing."""

    crd_served: bool
    missing: tuple[str, ...] = ()  # "KopfPeering proxnix in namespace default", "ClusterKopfPeering proxnix"


@dataclass(frozen=True)
class PeeringChoice:
    """What to hand kopf (`name` None: standalone), what to log, and whether to wait for a missing object."""

    name: str | None
    level: int
    message: str
    waiting: bool = False


def peering_objects(name: str, namespaces: list[str]) -> list[tuple[str, str | None]]:
    """(plural, namespace) of each peering object kopf uses: one per namespace, or the cluster-wide one."""
    if namespaces:
        return [("kopfpeerings", ns) for ns in namespaces]
    return [("clusterkopfpeerings", None)]


def describe(plural: str, namespace: str | None, name: str) -> str:
    if namespace is None:
        return f"ClusterKopfPeering {name}"
    return f"KopfPeering {name} in namespace {namespace}"


def decide(requested: str | None, standalone: bool, facts: PeeringFacts | None) -> PeeringChoice:
    """The peering to join. `facts` is None only with `standalone` (the API is not asked then)."""
    if standalone:
        return PeeringChoice(None, logging.INFO, "running standalone (--standalone): no peering")
    assert facts is not None
    name = requested or DEFAULT_PEERING
    if requested is not None:
        if not facts.crd_served:
            return PeeringChoice(
                name,
                logging.ERROR,
                f"peering {name!r} is required (--peering {name}) but kopf's peering CRDs are not installed: "
                f"{HOW_TO_APPLY}; this operator does nothing until then",
                waiting=True,
            )
        if facts.missing:
            return PeeringChoice(
                name,
                logging.ERROR,
                f"peering {name!r} is required (--peering {name}) but {', '.join(facts.missing)} does not exist: "
                f"{HOW_TO_APPLY}; this operator does nothing until then",
                waiting=True,
            )
        return PeeringChoice(
            name, logging.INFO, f"joining peering {name!r}: only the highest priority replica acts"
        )
    if not facts.crd_served:
        return PeeringChoice(
            None,
            logging.WARNING,
            "no kopf peering CRD (kopfpeerings.kopf.dev): running standalone, so every replica acts; to run "
            f"several replicas, {HOW_TO_APPLY} and start them with --peering {DEFAULT_PEERING}",
        )
    if facts.missing:
        return PeeringChoice(
            None,
            logging.WARNING,
            f"{', '.join(facts.missing)} does not exist: running standalone, so every replica acts; to run "
            f"several replicas, {HOW_TO_APPLY} and start them with --peering {DEFAULT_PEERING}",
        )
    return PeeringChoice(
        name, logging.INFO, f"joining peering {name!r}: only the highest priority replica acts"
    )


async def facts(kube: KubeApi, name: str, namespaces: list[str]) -> PeeringFacts:
    """Ask the API whether kopf's peering CRD is served and which of the peering objects are missing."""
    objects = peering_objects(name, namespaces)
    served = await kube.served_resources(KOPF_GROUP, KOPF_VERSION)
    if not {plural for plural, _ in objects} <= served:
        return PeeringFacts(crd_served=False)
    missing = [
        describe(plural, ns, name)
        for plural, ns in objects
        if not await kube.exists(KOPF_GROUP, KOPF_VERSION, plural, ns, name)
    ]
    return PeeringFacts(crd_served=True, missing=tuple(missing))


async def detect(
    kube: KubeApi, requested: str | None, standalone: bool, namespaces: list[str]
) -> PeeringChoice:
    """`decide` on what the API has now; the choice is logged at its level."""
    found = None if standalone else await facts(kube, requested or DEFAULT_PEERING, namespaces)
    choice = decide(requested, standalone, found)
    log.log(choice.level, "%s", choice.message)
    return choice


@dataclass
class PeeringWatch:
    """While a mandatory peering's object is missing: re-check, repeat the error now and then, fail the probe."""

    kube: KubeApi
    name: str
    namespaces: list[str]
    waiting: bool
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> None:
        if self.waiting and self._task is None:
            self._task = asyncio.create_task(self._run(), name="peering-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        since_error = 0.0
        while self.waiting:
            await asyncio.sleep(RECHECK_SECONDS)
            since_error += RECHECK_SECONDS
            try:
                choice = decide(self.name, False, await facts(self.kube, self.name, self.namespaces))
            except KubeError as exc:
                log.warning("cannot check peering %r: %s", self.name, exc)
                continue
            if not choice.waiting:
                self.waiting = False
                log.info("peering %r now exists: %s", self.name, choice.message)
            elif since_error >= REPEAT_ERROR_SECONDS:
                since_error = 0.0
                log.error("%s", choice.message)
